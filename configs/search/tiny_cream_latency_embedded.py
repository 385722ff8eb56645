# The tiny Cream search on the embedded data (tiny_cream_embedded.py) under
# a latency budget instead of a FLOPs range: the sampler's range, Eq. 3's
# board, the final selection and the export use the predicted latency (ms)
# of a table measured on the deployment device (docs/latency.md). Build the
# table first, on the machine the model will run on:
#   python tools/build_latency_table.py \
#       configs/search/tiny_cream_latency_embedded.py --device cpu \
#       --runtime fused --threads 1 \
#       --out work_dirs/latency/tiny_cream_cpu_fused.json
# then search:
#   python tools/train.py configs/search/tiny_cream_latency_embedded.py
# The budget is the cheapest 40 % of the space's predicted latency span (a
# range that holds on any machine); for an absolute one set
#   --cfg-options "model.cost.range=(None, 2.0)" model.cost.range_fraction=None
_base_ = ['./tiny_cream_embedded.py']
model = dict(
    flops_range=(None, None),  # not used: the range is cost's, in ms
    cost=dict(type='latency',
              table='work_dirs/latency/tiny_cream_cpu_fused.json',
              range_fraction=(0.0, 0.4),
              predictor='calibrated',
              # the table must be measured under these conditions (and on
              # this machine's CPU and torch): else the search is refused
              expect=dict(device='cpu', runtime='fused', threads=1,
                          batch_size=1),
              on_mismatch='error'))
