"""Test support: a tiny GGUF model and a real llama.cpp server fixture for the local-model tests."""
