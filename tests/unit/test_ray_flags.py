"""The Ray flags of `fledge learn`: --workers, --ray-address, --ray-num-cpus map onto env_settings."""

from __future__ import annotations

import pytest

from fledge.config import parse_learn_args, resolve_run_options
from fledge.errors import ConfigError


def test_ray_flags_set_their_env_settings_keys() -> None:
    argv = ["--workers", "ray", "--ray-address", "auto", "--ray-num-cpus", "0.5", "--ray-envs-per-worker", "1"]
    args = parse_learn_args(argv)
    assert args.overrides["env_settings"] == {
        "workers": "ray",
        "ray_address": "auto",
        "ray_num_cpus": 0.5,
        "ray_envs_per_worker": 1,
    }
    es = resolve_run_options(args).env_settings
    assert (es.workers, es.ray_address, es.ray_num_cpus) == ("ray", "auto", 0.5)
    defaults = resolve_run_options(parse_learn_args([])).env_settings
    assert (defaults.workers, defaults.ray_address, defaults.ray_num_cpus) == (None, None, 1.0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workers", "cluster"], "expected one of local, processes, ray"),
        (["--ray-num-cpus", "-1"], "at least 0"),
        (["--ray-address", " "], "must not be empty"),
    ],
)
def test_bad_ray_flags_say_what_is_expected(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_learn_args(argv)
