"""Transcript normalisation shared by training, evaluation and decoding.

The models are trained on lower-case words made of letters and apostrophes;
references are normalised the same way before WER is computed, so that
punctuation and casing never count as recognition errors.
"""

from __future__ import annotations

import re

from num2words import num2words

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_NOT_WORD = re.compile(r"[^a-z' ]+")
_SPACES = re.compile(r"\s+")
_EDGE_APOSTROPHES = re.compile(r"(?<![a-z])'|'(?![a-z])")
_BRACKETED = re.compile(r"\[[^\]]*\]")


def spell_numbers(text: str) -> str:
    """Replace digit strings with English words ("press 1" -> "press one").

    Args:
        text: any text.

    Returns:
        The text with every number (ordinals included) spelled out.
    """
    text = _ORDINAL.sub(lambda m: " " + _number(m.group(1), "ordinal") + " ", text)
    return _NUMBER.sub(lambda m: " " + _number(m.group()) + " ", text)


#: digit strings longer than this are read digit by digit (num2words refuses numbers of 300+ digits, which
#: a decoder's repetition loop can write: "1212...12")
MAX_NUMBER_DIGITS = 21
_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _digits(digits: str) -> str:
    return " ".join(_DIGIT_WORDS[int(d)] for d in digits)


def _number(number: str, to: str = "cardinal") -> str:
    """A number's words (``to``: num2words' ``cardinal`` or ``ordinal``), digit by digit when too long."""
    whole, _, fraction = number.partition(".")
    if len(whole) > MAX_NUMBER_DIGITS or len(fraction) > MAX_NUMBER_DIGITS:
        return _digits(whole) + (" point " + _digits(fraction) if fraction else "")
    return num2words(float(number) if fraction else int(number), to=to)


def normalize_transcript(text: str) -> str:
    """Normalise text to the model's alphabet: lower-case words, letters and apostrophes.

    Bracketed annotations (``[ascending tones]``) are dropped, numbers are
    spelled out, hyphens and other punctuation become word breaks.

    Args:
        text: a reference transcript or a line of training text.

    Returns:
        Words separated by single spaces, possibly empty.
    """
    text = _BRACKETED.sub(" ", text)
    text = spell_numbers(text).lower().replace("’", "'")
    text = text.replace("&", " and ")
    text = _NOT_WORD.sub(" ", text)
    text = _EDGE_APOSTROPHES.sub(" ", text)
    return _SPACES.sub(" ", text).strip()
