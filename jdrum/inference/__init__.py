"""Inference: a trained or converted run directory turned into drums.

`pipeline` (drumless audio in, drum takes out), `sampling` (the LM's windowed generation),
`vocode` (mel → audio), `songs` (files in, wavs + summary + report out: `python -m
jdrum.sample`), `report` (the HTML report), `evaluation` (whole-song beat metrics with
bounds: `python -m jdrum.evaluate`) and `tokenizer` (a dataset's clips as token records:
`python -m jdrum.tokenize`).
"""
