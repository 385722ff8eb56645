from .blocks import (ConvBnAct, DepthwiseSeparable, InvertedResidual,
                     ResidualBottleneck, SqueezeExcite, build_op,
                     make_divisible)
from .cream_net import CreamNet
from .heads import CreamClsHead

__all__ = ['ConvBnAct', 'DepthwiseSeparable', 'InvertedResidual',
           'ResidualBottleneck', 'SqueezeExcite', 'build_op', 'make_divisible',
           'CreamNet', 'CreamClsHead']
from .matching import MetaMatchingNetwork  # noqa: E402
from .supernet import ChoiceLayer, CreamSupernet, SearchSpace  # noqa: E402

__all__ += ['MetaMatchingNetwork', 'ChoiceLayer', 'CreamSupernet',
            'SearchSpace']
from .alpha_divergence import AdaptiveAlphaDivergence, alpha_divergence  # noqa: E402,F401

__all__ += ['AdaptiveAlphaDivergence', 'alpha_divergence']
