"""How a chart refuses values, as the tests judge it: in values validation (the schema), or with one
template `fail` sentence that starts with the values key — never with a Go template crash."""

from __future__ import annotations

import re

from homeci.helm import HelmError

# What a template crash looks like in Helm's output: a value reached a template that could not handle it.
GO_CRASH = re.compile(
    r"nil pointer|wrong type for value|error calling|can't evaluate field|index of untyped nil"
    r"|invalid value; expected|error converting YAML|YAML parse error|unable to build kubernetes objects"
    r"|cannot unmarshal|<no value>|%!\w\("
)
SCHEMA_REFUSAL = "don't meet the specifications of the schema"
# Helm itself, before the schema: a subchart's section that is not a map (`traefik: abc`) breaks its
# dependency condition (`traefik.enabled`). Helm 3 and 4 word it "type mismatch on traefik: %!t(string=abc)"
# (a formatting slip of Helm's own); it names the key, and no chart can intercept it.
HELM_CONDITION = re.compile(r"type mismatch on (?P<key>[A-Za-z0-9_-]+): %!t\(")
FAIL_LINE = re.compile(r"execution error at \([^)]*\): (?P<sentence>.+)")
# The sentence starts with the key (global.domain, drone.runner.cloneImage.tag, targets[0].namespace).
KEY_FIRST = re.compile(r"^[a-z][A-Za-z0-9]*(\.[A-Za-z0-9]+|\[[0-9]+\])*\b")


def text_of(exc: HelmError) -> str:
    return f"{exc}\n{exc.stderr}"


def fail_sentence(message: str) -> str:
    """The sentence of a template ``fail`` in Helm's output (the rest of the ``execution error`` line)."""
    match = FAIL_LINE.search(message)
    assert match, f"not a template fail: {message}"
    return match.group("sentence").split(" Use --debug flag", 1)[0].strip()


def sentence_problems(sentence: str) -> list[str]:
    """Why ``sentence`` is not '<key> <what is wrong>: <the fix>' on one line (empty when it is)."""
    problems = []
    if "\n" in sentence:
        problems.append("spans several lines")
    if not KEY_FIRST.match(sentence):
        problems.append("does not start with the values key")
    if ": " not in sentence:
        problems.append("has no ': ' before the fix")
    return problems


def classify(exc: HelmError) -> str:
    """"schema", "fail" or "condition" (Helm's own, above) for a clean refusal; raises AssertionError
    naming what is unclean."""
    message = text_of(exc)
    if HELM_CONDITION.search(message):
        return "condition"
    if SCHEMA_REFUSAL in message:  # values validation runs before any template (its text quotes patterns)
        return "schema"
    crash = GO_CRASH.search(message)
    assert crash is None, f"a template crashed ({crash.group(0)!r}) instead of refusing cleanly: {message}"
    sentence = fail_sentence(message)
    problems = sentence_problems(sentence)
    assert not problems, f"fail sentence {sentence!r} " + ", ".join(problems)
    return "fail"
