"""Cream search: path sampling, the prioritized path board, the algorithm
(Alg. 1), evolution baseline, hooks and export."""
from .board import PathBoard
from .cream import CreamSearch
from .ddp import CreamSearchDDP
from .evolution import EvolutionSearch
from .export import export_arch, select_from_board
from .flops_table import FlopsTable
from .hooks import CreamSearchHook, SearchDigestHook, plot_pareto
from .optim import CreamOptimWrapperConstructor
from .sampler import RELEASE_OP_PRIOR, PathSampler
from .finals import FINAL_SEARCHES, register_final, run_final
from .protocol import SubnetSampler, Supernet
from .samplers import build_sampler, register_sampler
from .attentive_sampler import AttentiveSampler  # registers its sampler
from .base import SupernetAlgorithm
from .sandwich import SandwichSearch, SoftCrossEntropyKD
from .pareto import ParetoSearch, save_front

__all__ = ['PathBoard', 'CreamSearch', 'CreamSearchDDP', 'FlopsTable',
           'EvolutionSearch', 'export_arch', 'select_from_board',
           'CreamSearchHook', 'SearchDigestHook', 'plot_pareto',
           'CreamOptimWrapperConstructor', 'PathSampler', 'RELEASE_OP_PRIOR']
__all__ += ['FINAL_SEARCHES', 'register_final', 'run_final',
            'SubnetSampler', 'Supernet', 'build_sampler', 'register_sampler']
__all__ += ['AttentiveSampler']
__all__ += ['SupernetAlgorithm', 'SandwichSearch', 'SoftCrossEntropyKD',
            'ParetoSearch', 'save_front']
from .kshot import KShotOptimWrapperConstructor, KShotSearch  # noqa: E402
from .nsga2 import NSGA2Search  # noqa: E402  (registers final 'nsga2')
__all__ += ['KShotSearch', 'KShotOptimWrapperConstructor', 'NSGA2Search']
from .telemetry import SearchTelemetryHook, read_telemetry  # noqa: E402
__all__ += ['SearchTelemetryHook', 'read_telemetry']
from .flops_table import CostTable  # noqa: E402
from .latency_table import LatencyTable  # noqa: E402
__all__ += ['CostTable', 'LatencyTable']
from .det_cream import DetCreamSearch  # noqa: E402
__all__ += ['DetCreamSearch']
