# Which mmcv ops this machine can run; sourced by scripts/setup.sh (and by
# tests/test_setup_mmcv.py with fake nvidia-smi / nvcc on PATH).
#
#   mmcv_gpu_present          exit 0 when `nvidia-smi -L` lists a GPU
#   mmcv_find_nvcc            prints the nvcc torch's build would use
#   mmcv_ops_mode TORCH_CUDA  prints `cpu` or `cuda`; exit 1 with one
#                             sentence saying what to install when a GPU is
#                             present but the CUDA ops cannot be built
#
# CREAM_MM_MMCV_OPS=auto (default) | cpu | cuda: `cpu` builds CPU-only ops
# on purpose (a GPU machine then fails RetinaNet's focal loss / NMS on
# CUDA), `cuda` insists on the CUDA ops. CUDA_HOME / CUDA_PATH, then nvcc on
# PATH, then CUDA_DEFAULT_HOME (/usr/local/cuda) locate nvcc, in the order
# torch.utils.cpp_extension uses.

mmcv_gpu_present() {
  command -v nvidia-smi >/dev/null 2>&1 || return 1
  nvidia-smi -L 2>/dev/null | grep -q '^GPU [0-9]'
}

mmcv_find_nvcc() {
  local home=${CUDA_HOME:-${CUDA_PATH:-}}
  if [ -n "$home" ] && [ -x "$home/bin/nvcc" ]; then
    echo "$home/bin/nvcc"; return 0
  fi
  if command -v nvcc >/dev/null 2>&1; then
    command -v nvcc; return 0
  fi
  home=${CUDA_DEFAULT_HOME:-/usr/local/cuda}
  if [ -x "$home/bin/nvcc" ]; then
    echo "$home/bin/nvcc"; return 0
  fi
  return 1
}

mmcv_ops_mode() {
  local torch_cuda=${1:-None} want=${CREAM_MM_MMCV_OPS:-auto} nvcc release
  case "$want" in
    auto|cpu|cuda) ;;
    *) echo "CREAM_MM_MMCV_OPS=$want: allowed auto, cpu, cuda" >&2
       return 1 ;;
  esac
  if [ "$want" = cpu ]; then echo cpu; return 0; fi
  if ! mmcv_gpu_present; then
    if [ "$want" = cuda ]; then
      echo "CREAM_MM_MMCV_OPS=cuda but nvidia-smi lists no GPU:" \
           "CUDA ops could not be checked on this machine" >&2
      return 1
    fi
    echo cpu; return 0
  fi
  if [ "$torch_cuda" = None ] || [ -z "$torch_cuda" ]; then
    echo "a GPU is present but torch is a CPU-only build" \
         "(torch.version.cuda is None): install a CUDA build of torch" \
         "(PyPI's torch wheel on Linux is one), then rerun scripts/setup.sh" >&2
    return 1
  fi
  if ! nvcc=$(mmcv_find_nvcc); then
    echo "a GPU is present but nvcc is not: install the CUDA toolkit" \
         "$torch_cuda (torch.version.cuda) and put its nvcc on PATH or set" \
         "CUDA_HOME, then rerun scripts/setup.sh" \
         "(CREAM_MM_MMCV_OPS=cpu builds CPU-only ops on purpose)" >&2
    return 1
  fi
  release=$("$nvcc" --version 2>/dev/null | sed -n 's/.*release \([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | head -n 1)
  if [ "${release%%.*}" != "${torch_cuda%%.*}" ]; then
    echo "nvcc $nvcc is CUDA ${release:-unknown} but torch is built for CUDA" \
         "$torch_cuda: install the CUDA toolkit $torch_cuda (torch.version.cuda)" \
         "and point CUDA_HOME at it, then rerun scripts/setup.sh" >&2
    return 1
  fi
  echo cuda
}

# Python that checks one compiled op on the device it will run on (argv[1]:
# cpu | cuda): NMS and sigmoid focal loss, RetinaNet's two mmcv ops.
MMCV_OPS_CHECK='
import sys
import torch
from mmcv.ops import nms, sigmoid_focal_loss
dev = sys.argv[1]
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.],
                      [20., 20., 30., 30.]], device=dev)
keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7], device=dev), 0.5)[1]
assert keep.tolist() == [0, 2], keep
if dev != "cpu":
    logits = torch.zeros(4, 3, device=dev, requires_grad=True)
    loss = sigmoid_focal_loss(logits, torch.tensor([0, 1, 2, 0], device=dev),
                              2.0, 0.25, None, "mean")
    loss.backward()
    assert torch.isfinite(loss) and logits.grad is not None
print("mmcv ops run on", dev)
'
