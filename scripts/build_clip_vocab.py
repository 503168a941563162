"""Derive the CLIP tokenizer files (vocab.json, merges.txt) from OpenAI's BPE list.

The list `bpe_simple_vocab_16e6.txt.gz` ships with OpenAI's CLIP and open_clip (MIT licence). The
vocabulary is built exactly as CLIP's `SimpleTokenizer` builds it: 256 byte symbols, the same with the
end-of-word marker, one entry per merge, then the two special tokens (49,408 entries), which is the
layout of the `vocab.json`/`merges.txt` pair that Stable Diffusion's tokenizers use.

Usage: python scripts/build_clip_vocab.py path/to/bpe_simple_vocab_16e6.txt.gz oneword/data/tokenizer
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

N_MERGES = 49152 - 256 - 2


def bytes_to_unicode() -> dict[int, str]:
    """CLIP's reversible map from bytes to printable unicode characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def main(src: str, dst: str) -> None:
    """Write vocab.json and merges.txt into `dst`."""
    lines = gzip.open(src).read().decode("utf-8").split("\n")[1 : N_MERGES + 1]
    merges = [tuple(line.split()) for line in lines]
    vocab = list(bytes_to_unicode().values())
    vocab += [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    out = Path(dst)
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
