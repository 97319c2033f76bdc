"""Word lists and verb forms for wording a case fact as a question (``dxgraph.agents.questions``).

A small closed-class grammar of English as patients write it in the vignettes: pronouns,
auxiliaries, determiners, prepositions, a verb lexicon, irregular pasts, body parts.
"""

from __future__ import annotations

import re

# Turning a train fact into the yes/no question a doctor would ask. Plain rules, no model:
# find the clause's subject and finite verb, then invert (be/have/modal auxiliaries) or add
# do-support (-s verbs -> Does, past -> Did, plural/"you" -> Do). Negatives are asked
# positively ("I don't have any fever" -> "Do you have any fever?"), as a doctor would.
# Verbs after a noun subject are recognised only from the closed classes, a small lexicon
# and -ed/irregular pasts: "The outer sides of..." must not read "sides" as a verb.
SWAP = {"i": "you", "me": "you", "my": "your", "mine": "yours", "myself": "yourself",
         "we": "you", "us": "you", "our": "your", "ours": "yours", "ourselves": "yourselves"}
BE = {"am", "is", "are", "was", "were", "'m", "'re"}
HAVE = {"have", "has", "had", "'ve"}
MODAL = {"can", "could", "will", "would", "should", "may", "might", "must", "'ll", "'d"}
DO = {"do", "does", "did"}
NEG = {"not", "n't"}
ADVERBS = set("again all almost already also always barely constantly ever first hardly just mainly "
               "mostly never now often once only quite rarely really sometimes still usually very".split())
MOVABLE = {"sometimes", "often", "usually", "always", "also", "still", "once", "now"}
DETS = set("the a an your his her its their this that these those each every no any another".split())
PREPS = set("about above across after against along around as at before behind below beneath beside "
             "between by down during except for from in inside into like near next of off on onto out "
             "outside over round since through throughout to towards under until up upon with within "
             "without".split())
SUBORDINATORS = set("when whenever if before after since once while where because although though "
                     "unless until than that which who like".split())
# Words that end a noun-phrase subject: what follows them is another clause.
STOP = set("when whenever if because although though unless while where which who than".split())
NOT_SUBJECT = PREPS | STOP | {"and", "but", "or", "so", "then", "whose", "once"}
# Pronoun subjects: "sg"/"pl" take any -s/base word as the verb; "strict" ones are also
# determiners ("this flare", "some nails") and need a known verb form.
PRONOUNS = {"you": "pl", "they": "pl", "it": "sg", "he": "sg", "she": "sg", "nothing": "sg",
             "something": "sg", "everything": "sg", "anything": "sg", "this": "strict-sg",
             "that": "strict-sg", "one": "strict-sg", "each": "strict-sg", "these": "strict-pl",
             "those": "strict-pl", "some": "strict-pl", "both": "strict-pl", "all": "strict-pl",
             "most": "strict-pl", "none": "strict-pl", "many": "strict-pl", "few": "strict-pl"}
PARTICIPLE_AFTER_S = {"been", "got", "gotten", "gone", "had", "done", "grown", "become", "spread", "never",
                       "always", "already", "just", "started", "stopped", "changed"}
HE = set("father dad brother son nephew grandfather grandad uncle husband boyfriend partner".split())
SHE = set("mother mum mom sister daughter niece grandmother grandma aunt wife girlfriend".split())
BARE_NOUNS = {"pain", "itching", "itch", "swelling", "redness", "rash", "skin", "discharge", "bleeding"}
# Verbs recognised after a noun subject ("The itching keeps...", "Hot showers make...").
# Words that are more often nouns or adjectives here (crack, flake, dry, clear, water) are left out.
LEXICON = set("ache affect appear become begin bleed bother break burn catch cause change come crust "
               "disappear ease fade fall feel flare get give go grow happen heal help hurt improve itch "
               "keep leave look make matter move need peel pop press say seem set settle shoot show smell "
               "sneeze soften sound split spread start stay stick sting stop sweat swell take tend throb "
               "tingle touch turn wake weep wobble".split())
IRREGULAR = [entry.split() for entry in (
    "become became become|begin began begun|bleed bled bled|break broke broken|bring brought brought|"
    "build built built|burn burnt burnt|buy bought bought|catch caught caught|come came come|do did done|"
    "drink drank drunk|eat ate eaten|fall fell fallen|feel felt felt|find found found|forget forgot forgotten|"
    "get got gotten|give gave given|go went gone|grow grew grown|have had had|hear heard heard|hold held held|"
    "keep kept kept|know knew known|leave left left|lose lost lost|make made made|meet met met|pay paid paid|"
    "ride rode ridden|rise rose risen|run ran run|say said said|see saw seen|send sent sent|shake shook shaken|"
    "shrink shrank shrunk|sit sat sat|sleep slept slept|speak spoke spoken|spend spent spent|stand stood stood|"
    "stick stuck stuck|sting stung stung|swell swelled swollen|swim swam swum|take took taken|tell told told|"
    "think thought thought|throw threw thrown|wake woke woken|wear wore worn|write wrote written").split("|")]
PAST = {past: base for base, past, _ in IRREGULAR}
PARTICIPLES = {part for *_, part in IRREGULAR} | set("been got spread cut hurt put set split shut".split())
PAST_OVERRIDES = {"dyed": "dye", "ached": "ache", "eyed": "eye"}


def s_form(base: str) -> str:
    if re.search(r"[^aeiou]y$", base):
        return base[:-1] + "ies"
    return base + ("es" if re.search(r"(s|sh|ch|x|z|o)$", base) else "s")


LEX_FORMS = {base: base for base in LEXICON} | {s_form(base): base for base in LEXICON} | {
    "lasts": "last", "clears": "clear", "dries": "dry"}  # unambiguous only in the -s form


def base_of_s(word: str) -> str:
    w = word.lower()
    if w in ("has", "does", "goes", "is"):
        return {"has": "have", "does": "do", "goes": "go", "is": "be"}[w]
    if re.search(r"[^aeiou]ies$", w):
        return w[:-3] + "y"
    return w[:-2] if re.search(r"(ch|sh|ss|x|zz)es$", w) else w[:-1]


def is_regular_past(word: str) -> bool:
    w = word.lower()
    return len(w) > 3 and w.endswith("ed") and w.isalpha() and not w.endswith("eed") \
        and w not in {"hundred", "naked", "tired", "shed", "sled", "bred"}


def base_of_past(word: str) -> str:
    w = word.lower()
    if w in PAST_OVERRIDES or w in PAST:
        return PAST_OVERRIDES.get(w) or PAST[w]
    stem = w[:-2]
    if stem.endswith("i"):
        return stem[:-1] + "y"
    if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in "lsfzd":  # stopped, rubbed
        return stem[:-1]
    one_syllable = len(re.findall(r"[aeiouy]+", stem)) == 1
    # noticed, shaved, tingled, caused, continued, irritated, changed
    if (one_syllable and re.search(r"(^|[^aeiou])[aeiou][^aeiouwxy]$", stem)) or re.search(
            r"([cvzu]|[^aeiou]at|[bcdfgkptz]l|[aeiou]s|[rnl]s|ang|[rld]g|[^aeiou]ag|[^aeiou]ib|"
            r"[^aeiou][aeiou][dk]|[^aeiou][aiu]r)$", stem):
        return stem + "e"
    return stem


BODY = set("abdomen ankle arm armpit back belly body bottom breast brow buttock calf calves cheek cheekbone "
            "chest chin ear elbow eye eyebrow eyelid face feet finger fingernail foot forearm forehead groin "
            "gum gumline hairline hand heel hip jaw knee knuckle lash leg lid lip mouth nail neck nose palm "
            "scalp shin shoulder side skin sole spine stomach temple thigh throat thumb thumbnail toe toenail "
            "tongue tooth teeth trunk tummy waist wrist".split())
ADJECTIVE = re.compile(r"([^gr]y|ful|ous|ive|ish|ble|ed|en|ing)$|^(red|hot|sore|raw|warm|cold|wet|numb|stiff|weak|"
                        r"pale|dark|white|pink|brown|black|blue|green|grey|firm|soft|hard|rough|smooth|thick|thin|"
                        r"flat|round|big|small|large|tiny|bad|worse|better|fine|normal|sharp|dull|mild|severe|"
                        r"tender|tight|allergic|constant|persistent)$")
