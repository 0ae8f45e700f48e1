"""`fledge play RUN --versus`: a self-play run trained on Tennis beats random actions; a run against
itself gives mirrored, consistent counts; plain `fledge play` plays a run whose behaviors are teams."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from fledge import api
from fledge.cli import main as cli_main
from fledge.config import build_run_options
from fledge.configs import shipped_config
from fledge.errors import ConfigError
from fledge.play import play
from fledge.play_versus import versus

CONFIG = shipped_config("Tennis")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = tmp_path_factory.mktemp("versus")
    assert CONFIG is not None
    raw = yaml.safe_load(CONFIG.read_text())
    b = raw["behaviors"]["Tennis"]
    b.update(max_steps=150_000, summary_freq=50_000, checkpoint_interval=150_000)
    b["hyperparameters"].update(batch_size=256, buffer_size=2048, learning_rate=3.0e-3)
    b["network_settings"].update(hidden_units=64)
    b["self_play"].update(save_steps=2000, team_change=6000, swap_steps=1000)
    raw["env_settings"] = {"env_path": "Tennis", "num_areas": 16, "seed": 1}
    raw["checkpoint_settings"] = {"run_id": "tennis", "results_dir": str(results)}
    api.run(build_run_options(raw), display="none")
    return results / "tennis"


def test_trained_tennis_beats_random_actions(trained: Path) -> None:
    out = io.StringIO()
    result = versus(trained, "random", games=300, seed=3, out=out)
    assert result.games == 300 and result.wins + result.draws + result.losses == 300
    assert set(result.by_team) == {"team 0", "team 1"} and sum(map(sum, result.by_team.values())) == 300
    assert result.wins >= 0.8 * result.games, out.getvalue()
    assert "'random': " in out.getvalue()


def test_a_run_against_itself_counts_consistently(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(
        ["play", "tennis", "--results-dir", str(trained.parent), "--versus", str(trained), "--games", "101"]
    )
    assert code == 0
    text = capsys.readouterr().out
    last = text.strip().splitlines()[-1]
    assert "in 101 games" in last
    wins = int(last.split(": ")[1].split(" wins")[0])
    losses = int(last.split(", ")[2].split(" losses")[0])
    assert f"'tennis': {losses} wins" in last.split(";")[1] and wins + losses <= 101
    assert abs(wins - losses) <= 0.3 * 101  # the same policy on both sides (long rallies end as draws)


def test_plain_play_of_a_team_run_and_versus_needs_teams(trained: Path, tmp_path: Path) -> None:
    out = io.StringIO()
    result = play(trained, episodes=2, max_steps=300, out=out)
    assert result.behavior == "Tennis?team=0" and len(result.returns) == 2
    with pytest.raises(ConfigError, match="--games"):
        versus(trained, "random", games=0)
    single = tmp_path / "single"
    single.mkdir()
    (single / "configuration.yaml").write_text("env_settings: {env_path: Basic}\n")
    with pytest.raises(ConfigError, match="needs a game with teams"):
        versus(single, "random", games=2)
