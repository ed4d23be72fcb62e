"""Dataset code: what the TFDS builders of `tfds_builders/` import.

`records` (the clip record and how recordings are cut into clips), `multitrack` (stems of
real multitrack datasets into drum and drumless mixes), `synth` (the synthstems songs) and
`tokens` (the token records an LM trains on).
"""
