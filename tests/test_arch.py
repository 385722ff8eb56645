"""The arch notation: parse, print, round trip, clear errors."""
import pytest

from cream_mm.arch import (ALL_OPS, RELEASED, Arch, ArchError, format_arch,
                           parse_arch)


def test_released_names_and_aliases():
    assert parse_arch('cream-s') == parse_arch('cream-287m')
    assert parse_arch('CREAM-L') == parse_arch('cream-604m')
    a = parse_arch('cream-14m')
    assert a.resolution == 64 and a.depths == (1, 2, 2, 1, 1)
    assert parse_arch('cream-604m').depths == (5, 5, 5, 6, 6)


@pytest.mark.parametrize('name', sorted(RELEASED))
def test_round_trip_released(name):
    a = parse_arch(name)
    assert parse_arch(format_arch(a)) == a
    assert format_arch(parse_arch(format_arch(a))) == format_arch(a)


def test_canonical_folding_and_resolution():
    a = parse_arch('k5e6, k5e6 |k3e4,skip,skip|conv3|res,res|k7e4@96')
    assert a.stages[0] == ('k5e6', 'k5e6')
    assert a.stages[1] == ('k3e4', 'skip', 'skip')
    assert a.depths == (2, 1, 1, 2, 1)
    assert format_arch(a) == 'k5e6*2|k3e4,skip*2|conv3|res*2|k7e4@96'
    assert str(a) == format_arch(a)
    assert a.with_resolution(None).resolution is None


@pytest.mark.parametrize('text,field,allowed', [
    ('k3e4|k5e6|k5e6|k3e6', '4 stages', '5 separated'),
    ('k3e4|k9e6|k5e6|k3e6|k5e6', "'k9e6'", 'k3e4'),
    ('k3e4|skip|k5e6|k3e6|k5e6', 'stage 2 layer 0', 'first layer'),
    ('k3e4||k5e6|k3e6|k5e6', "stage 2", 'OP or OP*N'),
    ('k3e4|k5e6*0|k5e6|k3e6|k5e6', 'stage 2', 'at least 1'),
    ('k3e4|k5e6|k5e6|k3e6|k5e6@abc', "'abc'", 'integer'),
    ('k3e4|k5e6|k5e6|k3e6|k5e6@100', 'resolution 100', 'multiple of 32'),
    ('cream-xl', '1 stages', 'cream-s'),
])
def test_bad_input_names_token_and_allowed_values(text, field, allowed):
    with pytest.raises(ArchError) as e:
        parse_arch(text)
    msg = str(e.value)
    assert field in msg and allowed in msg, msg


def test_unknown_op_error_lists_every_allowed_op():
    with pytest.raises(ArchError) as e:
        parse_arch('k3e4|k5e6|mb3|k3e6|k5e6')
    for op in ALL_OPS:
        assert op in str(e.value)


def test_arch_is_validated_when_built_directly():
    with pytest.raises(ArchError, match='stage 1 layer 0'):
        Arch((('skip', ), ('k3e4', ), ('k3e4', ), ('k3e4', ), ('k3e4', )))
