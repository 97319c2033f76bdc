"""Turning a case fact into the yes/no question a doctor would ask (the rule doctor's bank).

Plain rules, no model: "The rash started after gardening." -> "Did the rash start after
gardening?". Used by ``dxgraph.agents.baselines`` to word its question bank.
"""

from __future__ import annotations

import re

from dxgraph.agents.lexicon import (
    ADJECTIVE,
    ADVERBS,
    BARE_NOUNS,
    BE,
    BODY,
    DETS,
    DO,
    HAVE,
    HE,
    LEXICON,
    LEX_FORMS,
    MODAL,
    MOVABLE,
    NEG,
    NOT_SUBJECT,
    PARTICIPLES,
    PARTICIPLE_AFTER_S,
    PAST,
    PREPS,
    PRONOUNS,
    SHE,
    STOP,
    SUBORDINATORS,
    SWAP,
    base_of_past,
    base_of_s,
    is_regular_past,
)

__all__ = ["question_from_fact"]

def _tokens(fact: str) -> list[str]:
    """Words in the second person, contractions split off ("it's" -> "it", "'s")."""
    out: list[str] = []
    for raw in fact.replace("\u2019", "'").strip().rstrip(".!?").split():
        word, punct = re.match(r"^(.*?)([,;:]*)$", raw).groups()
        m = re.match(r"^(.+?)(n't|'s|'re|'ve|'m|'d|'ll)$", word, re.I)
        host = m and m.group(1).lower()
        if m and (m.group(2).lower() != "'s" or host in {"it", "that", "there", "here", "he", "she", "what"}):
            stem = {"ca": "can", "wo": "will"}.get(host, m.group(1)) if m.group(2).lower() == "n't" else m.group(1)
            out += [stem, m.group(2).lower()]
        elif word:
            out.append(word)
        out += list(punct)
    original = list(out)
    for i, w in enumerate(original):
        low, after_i = w.lower(), i > 0 and original[i - 1] == "I"
        if after_i and low in ("am", "'m", "was"):
            out[i] = {"am": "are", "'m": "'re", "was": "were"}[low]
        elif low in SWAP and (low != "us" or w == "us"):
            out[i] = SWAP[low]
    return out


def _join(words: list[str]) -> str:
    text = re.sub(r" (?=n't\b|'s\b|'re\b|'ve\b|'m\b|'d\b|'ll\b|[,;:])", "", " ".join(words))
    return re.sub(r"\bcann't\b", "can't", re.sub(r"\bwilln't\b", "won't", text))


def _skip_adverbs(words: list[str], i: int) -> int:
    while i < len(words) and (words[i].lower() in ADVERBS or words[i].lower().endswith("ly")):
        i += 1
    return i


def _verb_kind(word: str, number: str) -> str | None:
    """``aux``, ``do``, ``s``, ``past`` or ``base`` when ``word`` can be the finite verb."""
    w = word.lower()
    if w in BE | HAVE | MODAL or w == "'s":
        return "aux"
    if w in DO:
        return "do"
    # "left" after a noun is a side ("the lower left moves"); after a pronoun it is a verb.
    past = (w in PAST and (w != "left" or number in ("sg", "pl"))) or is_regular_past(w)
    if number in ("sg", "pl"):
        if past:
            return "past"
        if number == "sg":
            return "s" if re.fullmatch(r"[a-z]+[^su']s", w) else None
        return "base" if w.isalpha() and w not in DETS | PREPS | SUBORDINATORS else None
    kind = "past" if past else ("base" if LEX_FORMS.get(w) == w else "s" if w in LEX_FORMS else None)
    if (number == "strict-sg" and kind == "base") or (number == "strict-pl" and kind == "s"):
        return None
    return kind


def _subject_verb(words: list[str]) -> tuple[int, int, str] | None:
    """(end of the subject, index of the finite verb, its kind) of a declarative clause."""
    if not words:
        return None
    first = words[0].lower()
    if first == "there" and len(words) > 1 and _verb_kind(words[1], "sg") == "aux":
        return 1, 1, "aux"
    if first in PRONOUNS:
        v = _skip_adverbs(words, 1)
        kind = _verb_kind(words[v], PRONOUNS[first]) if v < len(words) else None
        if kind:
            return 1, v, kind
        if first in ("you", "they", "it", "he", "she"):
            return None
    if first in NOT_SUBJECT | NEG | ADVERBS | LEX_FORMS.keys() | PAST.keys() or first.endswith("ly") \
            or _verb_kind(first, "strict") in ("aux", "do"):
        return None  # a noun phrase starts with none of these
    for v in range(1, min(len(words), 12)):
        w, prev = words[v].lower(), words[v - 1].lower()
        if w in (";", ":", "you", "they", "he", "she") or w in STOP or (
                w == "there" and prev in ("and", "or", "but", ",")):  # "..., and there is"
            return None
        if w in ("it", "them") and prev not in PREPS and not prev.endswith("ing"):
            return None
        kind = _verb_kind(w, "strict")
        if kind and prev in ("and", "or"):  # "raised and look like ...": predicates, not a subject
            return None
        # After a preposition only an auxiliary or an -s verb ("the inside looks") is a verb.
        if prev in {",", "to"} or (prev in DETS and kind not in ("aux", "do")) or (
                prev in PREPS and kind not in ("aux", "do", "s")):
            continue
        # A subject with commas is a list ("Red wine, spicy food and hot drinks make"), not
        # "red, tender bumps, some come"; and "Fever, chills and night sweats" has no verb.
        subject = [x.lower() for x in words[:v]]
        after_comma = subject[len(subject) - subject[::-1].index(","):] if "," in subject else []
        if kind and ("," not in subject or v + 1 < len(words) and {"and", "or"} & set(after_comma)):
            end = v
            while end > 1 and words[end - 1].lower() in ADVERBS:
                end -= 1
            return end, v, kind
    # An unknown verb only right after a short plain noun phrase ("The skin flakes off").
    for v in range(1, min(len(words) - 1, 5)):
        w, prev, nxt = words[v].lower(), words[v - 1].lower(), words[v + 1].lower()
        if w in STOP | PREPS | {";", ":", ","} or w.endswith("ing"):
            break
        if prev in DETS | {"and", "or"}:
            continue
        after = words[v + 2].lower() if v + 2 < len(words) else ""
        particle = nxt in ("off", "up", "down", "out", "away") and after not in DETS | {"your"}
        if (re.fullmatch(r"[a-z]{2,}[^su']s", w) or is_regular_past(w)) and (
                nxt in DETS | ADVERBS | {"you", "it", "them", "your"} or nxt.endswith("ly") or particle):
            return v, v, "past" if w.endswith("ed") else "s"
    return None


def _pronoun(subject: list[str], aux: str) -> str:
    s = [w.lower() for w in subject]
    if len(s) == 1 and s[0] in ("you", "it", "they", "he", "she"):
        return s[0]
    if len(s) == 1 and s[0] in PRONOUNS:
        return "they" if PRONOUNS[s[0]].endswith("pl") else "it"
    head = next((s[i - 1] for i, w in enumerate(s) if i and w in PREPS), s[-1])
    if head in HE | SHE:
        return "he" if head in HE else "she"
    if aux in ("is", "was", "has", "does"):
        return "it"
    if aux in ("are", "were", "have", "do"):
        return "they"
    return "they" if re.search(r"[^su]s$", head) else "it"


def _ask(words: list[str]) -> tuple[list[str], bool] | None:
    """A clause as a question (tokens, and whether a negative was turned positive), or None."""
    front: list[str] = []
    while len(words) > 2 and words[0].lower() in MOVABLE:
        front, words = front + [words[0].lower()], words[1:]
    found = _subject_verb(words)
    if not found:
        return None
    end, v, kind = found
    subject, adverbs, verb, rest = list(words[:end]), words[end:v], words[v], words[v + 1:]
    nxt = rest[_skip_adverbs(rest, 0)].lower() if _skip_adverbs(rest, 0) < len(rest) else ""
    low = verb.lower()
    if low == "'s":
        low = "has" if nxt in PARTICIPLE_AFTER_S else "is"
    elif low == "'d":
        low = "had" if nxt in PARTICIPLES or is_regular_past(nxt) else "would"
    low = {"'m": "are", "am": "are", "'re": "are", "'ve": "have", "'ll": "will"}.get(low, low)
    auxiliary_have = nxt in PARTICIPLES | PARTICIPLE_AFTER_S | NEG or is_regular_past(nxt)
    if kind == "aux" and low in HAVE and not auxiliary_have:  # "I have hay fever"
        aux, pred = {"have": "do", "has": "does", "had": "did"}[low], ["have", *rest]
    elif kind == "do" and not (nxt in NEG or nxt in LEX_FORMS or nxt in ADVERBS):
        aux, pred = low, ["do", *rest]  # "I do a lot of housework"
    elif kind in ("aux", "do"):
        aux, pred = low, rest
    elif kind == "s":
        aux, pred = "does", [base_of_s(verb), *rest]
    elif kind == "past":
        aux, pred = "did", [base_of_past(verb), *rest]
    else:
        aux, pred = "do", [verb, *rest]
    pred = [w.lower() for w in adverbs] + pred
    flipped = False
    i = _skip_adverbs(pred, 0)
    if i < len(pred) and pred[i].lower() in NEG:
        pred, flipped = pred[:i] + pred[i + 1:], True
    if "never" in pred[:3]:
        pred[pred.index("never")], flipped = "ever", True
    negative = {"no": "any", "nothing": "anything", "none": "any", "nobody": "anybody"}
    if subject[0].lower() in negative:
        subject[0], flipped = negative[subject[0].lower()], True
    for j in range(min(2, len(pred))):
        if pred[j].lower() in negative and (j == 1 or aux in BE | HAVE):
            pred[j], flipped = negative[pred[j].lower()], True
    if not (len(subject[0]) > 1 and subject[0].isupper()):
        subject[0] = subject[0].lower()
    if len(subject) == 1 and subject[0] in BARE_NOUNS:
        subject = ["the", *subject]
    pred = _continue(pred, aux, _pronoun(subject, aux), flipped)
    return [aux, *subject, *front, *pred], flipped


def _continue(pred: list[str], aux: str, pron: str, flipped: bool = False) -> list[str]:
    """Coordinated verbs agree with the question ("Does it come and go"); clauses after a
    comma or conjunction become questions of their own ("..., and is it hard to cut")."""
    out: list[str] = []
    sub = False  # inside "when ...", "after you ...": its own verbs are left alone
    for i, word in enumerate(pred):
        w = word.lower()
        if w in (",", ";", "and", "but", "or"):
            sub = sub and w not in (",", ";")
            j, conj = i + 1, "and" if w in (",", ";") else w
            if w in (",", ";") and j < len(pred) and pred[j].lower() in ("and", "but", "or"):
                conj, j = pred[j].lower(), j + 1
            then = j < len(pred) and pred[j].lower() == "then"
            rest = pred[j + then:]
            # Inside "when ...", only "and you/it ..." starts a new clause ("when you brush and you have").
            own = not sub or rest[:1] and rest[0].lower() in ("you", "it", "they", "he", "she", "there")
            asked = _ask(rest) if own and _starts_clause(rest) else None
            led = _lead(rest) if rest and rest[0].lower() in SUBORDINATORS and asked is None else None
            if led:  # "..., and when you pick it off, does it bleed"
                tokens, _ = _ask(led[1]) or ([], False)
                return out + [",", conj, *led[0], *tokens]
            k = _skip_adverbs(rest, 0)
            v = rest[k].lower() if k < len(rest) else ""
            kind = _verb_kind(v, "strict") if v and asked is None else None
            if kind == "do" and v == aux and rest[k + 1:k + 2] == ["n't"]:  # "but doesn't hurt"
                tail = _continue(rest[k + 2:], aux, pron, flipped)
                return out + [*pred[i:j + then], *rest[:k], "not", *tail]
            if kind in ("aux", "do"):
                asked = _ask([pron, *rest])
            # A regular -ed after "and" is an adjective ("red and cracked") unless the question is in the past.
            elif kind and not sub and not (kind == "past" and v not in PAST and aux != "did"):
                same = (aux == "does" and kind == "s") or (aux == "do" and kind == "base") or (
                    aux == "did" and kind in ("past", "base")) or (aux in MODAL and kind == "base") or (
                    aux in HAVE and v in PARTICIPLES)
                if same:
                    base = {"past": base_of_past, "s": base_of_s}.get(kind, str)(v) if aux not in HAVE else v
                    joint = ["and"] if flipped and w == "but" else pred[i:j + then]
                    tail = _continue(rest[k + 1:], aux, pron, flipped)
                    return out + [*joint, *rest[:k], base, *tail]
                asked = _ask([pron, *rest])
            if asked is not None:
                tokens, negated = asked
                joint = "and" if conj == "but" and (flipped or negated) else conj
                return out + [",", joint, *(["then"] if then else []), *tokens]
        if w in SUBORDINATORS and (w in ("that", "which", "who") or _subject_verb(pred[i + 1:])):
            sub = True
        out.append(word)
    return out


def _starts_clause(words: list[str]) -> bool:
    """Whether ``words`` open a clause of their own; "blisters grouped together" after a comma
    is a participle phrase, not "Did blisters group together"."""
    while len(words) > 2 and words[0].lower() in MOVABLE:
        words = words[1:]
    found = _subject_verb(words) if words and words[0].lower() not in NOT_SUBJECT else None
    if not found:
        return False
    first, verb = words[0].lower(), words[found[1]].lower()
    if "," in words[:found[1]]:  # "hot and red, and sitting is agony": the list ends before "sitting"
        return False
    participle = is_regular_past(verb) or verb in PARTICIPLES  # "a layer stuck to the teeth"
    return first in PRONOUNS or first in DETS or first in ("there", "your") or not participle


def _lead(words: list[str]) -> tuple[list[str], list[str]] | None:
    """A leading subordinate clause or time phrase ("When you scratch,", "Last night,")."""
    first = words[0].lower()
    if first in SUBORDINATORS - {"that", "which", "who", "like", "than"}:
        if "," in words:
            c = words.index(",")
            rest = words[c + 1:]
            if rest and rest[0].lower() not in ("and", "but") and _ask(rest):
                return words[:c + 1], rest
        for k in range(3, len(words) - 1):
            if "," in words[:k]:
                break
            if (words[k].lower() in PRONOUNS or words[k].lower() in DETS | {"there"}) and _ask(words[k:]):
                return [*words[:k], ","], words[k:]
    n = 2 if first in ("last", "this") and len(words) > 2 and re.fullmatch(
        r"night|time|week|month|year|morning|evening|summer|winter|spring", words[1].lower()) else \
        1 if first in ("yesterday", "today", "now", "recently", "lately", "then") else 0
    if n and len(words) > n + 1:
        rest = words[n + (words[n] == ","):]
        if _ask(rest):
            return [*words[:n], ","], rest
    return None


def _fragment(words: list[str]) -> list[str]:
    """A question for a fact without a finite verb: a place, a time, a symptom, an absence."""
    words = [words[0] if len(words[0]) > 1 and words[0].isupper() else words[0].lower(), *words[1:]]
    low = [w.lower() for w in words]
    text = " ".join(low)
    if not re.search(r"[a-z]{3}", text) or set(low) <= {*PRONOUNS, "yes", "no", "not", "really", "ok", "your"}:
        return ["is", "there", "anything", "else", "you", "have", "noticed"]
    if low[0] == "no":
        return ["have", "you", "had", *("any" if w == "no" else w for w in words)]
    if low[0].endswith("ing"):
        return ["has", "it", "been", *words]
    if re.search(r"\bago\b", text) or low[0] in ("yesterday", "last", "this"):
        return ["did", "it", "start", *words]
    if low[0] in ("for", "since", "over") or re.search(r"\b(hour|day|week|month|year)s?\b", text):
        return ["has", "it", "been", "there", *words]
    i = _skip_adverbs(low, 0)
    if i < len(low) and low[i] in PREPS or low[0] in ("a", "an"):
        return ["is", "it", *words]  # "Is it on your left forearm?", "Is it a lower molar ...?"
    chunk = low[:next((j for j, w in enumerate(low) if w in PREPS - {"of"} or w == ","), len(low))]
    body = [w for w in low if w in BODY or w.rstrip("s") in BODY or w[:-2] in BODY]
    if body and (set(chunk) & set(body) or low[0] in DETS | set(PRONOUNS) | {"your", "several"}):
        # A place: "Both thumbnails" -> "Is it on both thumbnails?".
        prep = "in" if low[1:2] in (["centre"], ["middle"], ["inside"]) else "on"
        if low[0] in DETS | set(PRONOUNS) | {"your", "several"}:
            return ["is", "it", prep, *words]
        return ["is", "it", prep, "the" if low[1:2] == ["of"] else "your", *words]
    if all(ADJECTIVE.search(w) or w in ADVERBS | {"and", "or", "a", "bit"} for w in chunk):
        return ["is", "it", *words]  # "Very itchy and red."
    return ["do", "you", "have", *words]  # "Fever, chills and night sweats."


def question_from_fact(fact: str) -> str:
    """A yes/no question about a fact, in the second person, as a doctor would ask it.

    >>> question_from_fact("I have had the rash for two weeks.")
    'Have you had the rash for two weeks?'
    >>> question_from_fact("It itches more at night and I don't have any fever.")
    'Does it itch more at night, and do you have any fever?'
    >>> question_from_fact("On my left forearm.")
    'Is it on your left forearm?'
    """
    words = _tokens(fact)
    if not words:
        return "Is there anything else you have noticed?"
    lead = _lead(words)
    prefix, words = lead if lead else ([], words)
    asked = _ask(words)
    first = words[0].lower()
    if not asked and (first in LEX_FORMS or first in PAST or base_of_past(first) in LEXICON):
        asked = _ask(["it", *words])  # "Started on Monday."
    tokens = asked[0] if asked else _fragment(words)
    while tokens and tokens[-1] in (",", ";", ":"):
        tokens = tokens[:-1]
    text = _join([*prefix, *tokens])
    return f"{text[:1].upper()}{text[1:]}?"
