"""Write a tiny llama-architecture GGUF model, offline, that llama.cpp loads and serves.

The weights are built, not trained: every answer word has one designed successor, so greedy
decoding walks a sentence of plain English words to its full stop and then to end-of-sequence.
Attention with random weights (fixed seed) decides where in the sentence list an answer starts,
so different prompts get different answers while the same prompt always gets the same one.
Where a grammar forbids end-of-sequence (a forced tool call), '"' follows "." instead, so the
JSON arguments close and parse.

    python tests/support/tiny_gguf.py OUT.gguf
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np

# Each word appears once, so each has exactly one successor; "." leads to end-of-sequence.
SENTENCES = (
    "your request stayed inside the company network .",
    "a local model wrote this reply .",
    "no private data left our servers today .",
    "please ask again with fewer details .",
    "secure answers come from sovereign hardware .",
    "every prompt gets checked before sending .",
    "quiet green rivers flow past old stone bridges .",
    "seven small birds sing near morning windows .",
    "bright lamps guard long winter evenings .",
    "fresh bread smells warm and sweet .",
    "clever engineers build careful tools .",
    "soft rain falls over distant hills .",
    "happy children read picture books .",
    "ships sail across calm blue oceans .",
    "tall trees shade sunny gardens .",
    "brave explorers map unknown islands .",
)
# Words of the chat template: in the vocabulary (short prompts) but never generated.
TEMPLATE_WORDS = ("system", "user", "assistant", "tool", "developer")
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ message['role'] }}: "
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% elif message['content'] %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}"
    "{% endif %}"
    "{{ '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)
SPACE = "\u2581"  # SentencePiece's word-start marker
UNK, BOS, EOS = 0, 1, 2
N_EMBD, N_LAYER, N_HEAD, N_HEAD_KV, N_FF, N_CTX = 128, 2, 4, 2, 128, 8192
SEED = 20261123


def vocabulary() -> tuple[list[str], list[float], list[int], list[str]]:
    """Tokens, scores, token types (gguf TokenType values) and the answer words' pieces."""
    tokens = ["<unk>", "<s>", "</s>"]
    types = [2, 3, 3]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [6] * 256
    pieces: list[str] = [SPACE] + [chr(c) for c in range(33, 127)]
    answer_pieces = []
    for sentence in SENTENCES:
        for word in sentence.split():
            answer_pieces.append(word if word == "." else SPACE + word)
    for word in [w for s in SENTENCES for w in s.split() if w != "."] + list(TEMPLATE_WORDS):
        # every prefix is a piece, so SentencePiece merging builds the word from its letters
        pieces += [SPACE + word[:n] for n in range(1, len(word) + 1)]
    for piece in dict.fromkeys(pieces):
        tokens.append(piece)
        types.append(1)
    # longer pieces merge first
    scores = [0.0] * 259 + [float(len(t)) - 100.0 for t in tokens[259:]]
    return tokens, scores, types, answer_pieces


def successors(tokens: list[str], answer_pieces: list[str]) -> dict[int, int]:
    """Next token of every answer piece: the following word, and end-of-sequence after '.'."""
    index = {t: i for i, t in enumerate(tokens)}
    nxt: dict[int, int] = {}
    position = 0
    for sentence in SENTENCES:
        n = len(sentence.split())
        ids = [index[p] for p in answer_pieces[position : position + n]]
        position += n
        for a, b in itertools.pairwise(ids):
            if a in nxt:
                raise ValueError(f"word {tokens[a]!r} appears twice in SENTENCES")
            nxt[a] = b
    nxt[index["."]] = EOS
    return nxt


def weights(tokens: list[str], nxt: dict[int, int]) -> dict[str, np.ndarray]:
    """All tensors, in numpy's row-major shapes (the GGUF writer reverses them for ggml)."""
    rng = np.random.default_rng(SEED)
    n_vocab, d, head = len(tokens), N_EMBD, N_EMBD // N_HEAD
    # dimension 0 carries a constant that the output layer uses as a per-token bias
    direction = rng.standard_normal((n_vocab, d - 1))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    # answer tokens get orthonormal directions, so a successor never competes with a look-alike
    gen = sorted(set(nxt) | set(nxt.values()))
    if len(gen) > d - 1:
        raise ValueError(f"{len(gen)} answer tokens need N_EMBD > {len(gen)}")
    basis, _ = np.linalg.qr(rng.standard_normal((d - 1, len(gen))))
    direction[gen] = basis.T
    embd = np.zeros((n_vocab, d), dtype=np.float32)
    embd[:, 0] = 1.0
    embd[:, 1:] = direction
    # ":" ends the prompt ("assistant:"): it points away from "." and end-of-sequence, and only
    # weakly anywhere else, so attention over the prompt picks the answer's first word
    full_stop = tokens.index(".")
    last_words = [a for a, b in nxt.items() if b == full_stop]
    away = direction[last_words].sum(axis=0)
    away = away / np.linalg.norm(away) + direction[full_stop]
    embd[tokens.index(":"), 1:] = 0.2 * direction[tokens.index(":")] - 0.5 * away
    output = np.zeros((n_vocab, d), dtype=np.float32)
    output[:, 0] = -50.0  # never generated: bytes, letters, prefixes, template words
    for i in gen:
        output[i, 0] = 0.0
        output[i, 1:] = 0.3 * rng.standard_normal(d - 1) / np.sqrt(d - 1)
    for a, b in nxt.items():
        output[b, 1:] += 4.0 * direction[a]
    # where end-of-sequence is not allowed (inside a JSON string forced by a grammar, as for a
    # tool call), '"' comes second after ".", so the string closes and the JSON can end
    quote = tokens.index('"')
    output[quote, 0] = 0.0
    output[quote, 1:] = 2.0 * direction[full_stop]
    tensors: dict[str, np.ndarray] = {"token_embd.weight": embd}
    for layer in range(N_LAYER):
        p = f"blk.{layer}."

        def rand(rows: int, cols: int, scale: float) -> np.ndarray:
            return (scale * rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)

        value = rand(N_HEAD_KV * head, d, 1.0)
        value[:, 0] = 0.0  # the constant dimension would make every context alike
        tensors |= {
            p + "attn_norm.weight": np.ones(d, dtype=np.float32),
            p + "attn_q.weight": rand(d, d, 3.0),
            p + "attn_k.weight": rand(N_HEAD_KV * head, d, 3.0),
            p + "attn_v.weight": value,
            p + "attn_output.weight": rand(d, d, 0.07),
            p + "ffn_norm.weight": np.ones(d, dtype=np.float32),
            p + "ffn_gate.weight": rand(N_FF, d, 1.0),
            p + "ffn_up.weight": rand(N_FF, d, 1.0),
            p + "ffn_down.weight": rand(d, N_FF, 0.02),
        }
    tensors["output_norm.weight"] = np.ones(d, dtype=np.float32)
    tensors["output.weight"] = output
    return tensors


def write_tiny_gguf(path: Path | str, name: str = "tiny") -> Path:
    """Write the model to `path` (about 1 MB, well under a second) and return the path."""
    import gguf  # the localmodel extra; imported here so the sentences can be read without it

    path = Path(path)
    tokens, scores, types, answer_pieces = vocabulary()
    nxt = successors(tokens, answer_pieces)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(N_CTX)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD_KV)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_pooling_type(gguf.PoolingType.MEAN)  # /v1/embeddings: one vector per input
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(UNK)
    writer.add_bos_token_id(BOS)
    writer.add_eos_token_id(EOS)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)
    for tensor_name, tensor in weights(tokens, nxt).items():
        writer.add_tensor(tensor_name, tensor)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python tests/support/tiny_gguf.py OUT.gguf", file=sys.stderr)
        return 2
    out = write_tiny_gguf(argv[1])
    print(f"wrote {out} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
