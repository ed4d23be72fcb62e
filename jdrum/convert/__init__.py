"""Official JukeDrummer PyTorch checkpoints → jdrum flax variables and run directories.

Modules, reusable from a CLI or a notebook (files are read by `jdrum.torch_io.read_checkpoint`:
`.pkl`, `.pth`, `.pt` with torch, `pip install 'jdrum[convert]'`; `.npz` directly, its names
split at the first "/", so `model/<state_dict key>`, `mean`, `std`, `hps/codebook_size` hold
the same checkpoint without torch):

* `vqvae`: `vq1_target.pkl`, `vq1_others.pkl` → `jdrum.models.vqvae.VQVAE` variables and mel
  statistics (`load_official_vqvae`, `vqvae_variables`).
* `lm`: `exp1.pkl`, `exp11.pkl` → (`LMConfig`, `DrumLM` variables) (`load_official_lm`).
* `hifigan`: the vocoder's `generator` → `Generator` variables (`load_official_vocoder`).
* `da2`: the DA2 tracker `RNNBeatProc.pth` → the "nodrum" head of a converted run
  (`jdrum.runs.da2_tracker_variables` reads it).
* `official`: any of these as a run directory, or the authors' folder as a whole run
  (`convert_official`).

Names that do not map are never skipped: unknown and missing keys raise one `ValueError`.

Command line (`__main__`; a converted run directory, read by `python -m jdrum.tokenize` and
sampling):

    python -m jdrum.convert --vqvae ckpt/vq1_target.pkl --stem drums --out runs/official/vqvae_drums
"""
