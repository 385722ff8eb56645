# Paper-scale Cream search (the 287M settings of §4.1, ImageNet, MBConv
# space at 224 px, 6 layers per stage) under a GPU latency budget instead of
# a FLOPs range (docs/latency.md). Not run: it needs the GPUs of the paper
# scale (docs/paper_scale.md) and a table measured on the deployment GPU:
#   python tools/build_latency_table.py \
#       configs/search/cream_paper_latency_gpu_in1k.py --device cuda \
#       --runtime fused --batch-size 1 \
#       --out work_dirs/latency/cream_mbconv224_cuda_fused.json
# The budget below is a share of the space's predicted span (the cheapest
# 35 %, about the FLOPs share of Cream-S's 250-300M range among 0-600M); the
# builder prints the span in ms, so an absolute budget can replace it:
#   --cfg-options "model.cost.range=(None, 3.0)" model.cost.range_fraction=None
# The search may run on other GPUs than the table's: on_mismatch='warn'
# logs the differing fields (device name, torch version) instead of
# refusing; the expected runtime, batch and device are still checked.
_base_ = ['./cream_paper_287m_in1k.py']
model = dict(
    flops_range=(None, None),  # not used: the range is cost's, in ms
    cost=dict(type='latency',
              table='work_dirs/latency/cream_mbconv224_cuda_fused.json',
              range_fraction=(0.0, 0.35),
              predictor='calibrated',
              expect=dict(device='cuda', runtime='fused', batch_size=1),
              on_mismatch='warn'))
