#!/usr/bin/env bash
# The wheels oneword's training (and benchmarks/gpu_suite.py) imports besides PyTorch, downloaded for a Linux
# x86_64 GPU machine that has PyTorch (and what PyTorch itself needs) but nothing else and no network.
# gpu_suite.sh installs them there with `pip install --no-index --no-deps`.
#
#   bash benchmarks/gpu_wheels.sh [PYTHON_VERSION [PRESENT]]   # default: this machine's Python, nothing present
#
# PRESENT: a file naming the packages the GPU machine already has, one a line (`python3 -m pip list
# --format=freeze` there; what follows a name is ignored): their wheels are left out. The wheels go to
# benchmarks/wheels (git-ignored; FOLDER in the environment overrides it), replacing what was there, with
# requirements.txt (what gpu_suite.sh installs) and PYTHON (the version they are for).
#
# --no-deps and a fixed list: the versions oneword is tested with, and only what the training path imports
# (no typer/rich: the CLI is not used; no opencv: only `preprocess` imports it; no peft, no hf-xet: nothing
# downloads). PyTorch's own dependencies (filelock, fsspec, jinja2, networkx, sympy, typing-extensions) are not
# downloaded: the machine has them with its PyTorch.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
version=${1:-$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')}
present=${2:-}
folder=${FOLDER:-benchmarks/wheels}
limit_mib=${LIMIT_MIB:-40}  # a 64 MiB transfer less the working tree (about 20 MiB)
if ! [[ $version =~ ^3\.[0-9]+$ ]]; then
    echo "gpu_wheels.sh: PYTHON_VERSION must look like 3.12, not '$version'" >&2
    exit 2
fi

wheels=(
    # the models: UNet, VAE, schedulers (diffusers); CLIP text encoders and tokenizers (transformers)
    diffusers==0.42.1 transformers==5.24.0 tokenizers==0.23.3 huggingface_hub==2.4.0 safetensors==0.8.0
    accelerate==1.15.0
    # what those import at start
    numpy==2.4.6 regex==2026.11.19 PyYAML==6.0.4 packaging==26.4 tqdm==4.70.1 importlib_metadata==10.2.0
    zipp==4.1.2 requests==2.34.2 urllib3==2.8.0 idna==3.20 certifi==2026.10.19.post1 charset-normalizer==3.5.3
    httpx2==2.16.2 httpcore2==2.16.2 h11==0.16.0 anyio==4.16.0 truststore==0.10.5 click==8.5.1
    # the pictures, the run's lock files, loss.png at the end of every run
    pillow==12.3.0 psutil==7.2.2
    matplotlib==3.11.2 contourpy==1.3.3 cycler==0.12.1 fonttools==4.68.0 kiwisolver==1.5.1 pyparsing==3.3.3
    python-dateutil==4.0.0
)

if [[ -n $present ]]; then
    have=" $(sed -E 's/[=<>!~ ;@\[].*//' "$present" | tr 'A-Z_.' 'a-z--' | tr '\n' ' ') "
    keep=()
    for wheel in "${wheels[@]}"; do
        name=${wheel%%==*}
        name=${name,,}
        name=${name//[_.]/-}
        [[ $have == *" $name "* ]] || keep+=("$wheel")
    done
    wheels=("${keep[@]}")
fi

mkdir -p "$folder"
rm -f "$folder"/*.whl
if (( ${#wheels[@]} )); then
    "$python" -m pip download --quiet --no-deps --only-binary=:all: --implementation cp --python-version "$version" \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform linux_x86_64 \
        -d "$folder" "${wheels[@]}"
fi
printf '%s\n' "${wheels[@]}" | sed '/^$/d' > "$folder/requirements.txt"
echo "$version" > "$folder/PYTHON"
bytes=$(find "$folder" -maxdepth 1 -name '*.whl' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
mib=$(( (bytes + 1048575) / 1048576 ))
echo "${#wheels[@]} wheels for Python $version in $folder: $mib MiB"
if (( mib > limit_mib )); then
    echo "gpu_wheels.sh: $mib MiB is over $limit_mib MiB, what a 64 MiB transfer leaves beside the working tree;" \
         "name the packages the GPU machine has in PRESENT" >&2
fi
