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
from .attentive_arch import (ALPHANET_ARCHS, AttentiveArch,  # noqa: E402
                             AttentiveSpace, format_attentive_arch,
                             parse_attentive_arch)
from .attentive_net import AttentiveNet  # noqa: E402
from .attentive_supernet import (AttentiveDynamicHead,  # noqa: E402
                                 AttentiveSupernet)

__all__ += ['ALPHANET_ARCHS', 'AttentiveArch', 'AttentiveSpace',
            'format_attentive_arch', 'parse_attentive_arch', 'AttentiveNet',
            'AttentiveDynamicHead', 'AttentiveSupernet']
from .kshot import KShotSupernet  # noqa: E402
from .simplex_net import SimplexNet, channel_regulariser  # noqa: E402

__all__ += ['KShotSupernet', 'SimplexNet', 'channel_regulariser']
