"""Errors that carry what failed and what to do about it."""


class DlpError(Exception):
    """Base class of dlpproxy's own errors."""


class RulePackError(DlpError):
    """A rule pack (YAML or gitleaks TOML) is invalid; the message names file, rule and problem."""

    def __init__(self, source: str, problem: str, rule: str | None = None, line: int | None = None):
        self.source = source
        self.rule = rule
        self.line = line
        self.problem = problem
        where = source if line is None else f"{source}:{line}"
        if rule:
            where = f"{where}: rule '{rule}'"
        super().__init__(f"{where}: {problem}")


class DetectorError(DlpError):
    """A detector could not scan a text (it is broken, its model is missing, ...)."""

    def __init__(self, detector: str, problem: str):
        self.detector = detector
        super().__init__(f"detector '{detector}': {problem}")


class ScanTimeout(DlpError):
    """A scan ran past its time budget; callers at the proxy fail closed on it."""

    def __init__(self, budget_ms: float, pending: list[str]):
        self.budget_ms = budget_ms
        self.pending = pending
        names = ", ".join(pending) or "?"
        super().__init__(
            f"scan exceeded its {budget_ms:.0f} ms budget (still running: {names}); "
            "raise engine.time_budget_ms or treat the prompt as unscanned"
        )


class BodyError(DlpError):
    """A request or response body cannot be read (malformed, truncated, wrong type, too big).

    At the proxy a body that cannot be read is never passed on unscanned: callers block it and
    quote this reason.
    """

    def __init__(self, problem: str, where: str = ""):
        self.problem = problem
        self.where = where
        super().__init__(f"{where}: {problem}" if where else problem)
