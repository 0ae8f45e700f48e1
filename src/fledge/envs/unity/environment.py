"""UnityEnvironment: a fledge BaseEnv over ML-Agents' wire protocol (communication version 1.5.0).

    env = UnityEnvironment("builds/3DBall", worker_id=0, seed=1, no_graphics=True)
    env.reset()
    name = next(iter(env.behavior_specs))
    decision, terminal = env.get_steps(name)
    env.set_actions(name, env.behavior_specs[name].action_spec.random_action(len(decision)))
    env.step()
    env.close()

With a file name the player is started (port 5005 + worker_id, or base_port + worker_id); without
one fledge waits for the Unity Editor on port 5004 (press Play). Behaviors that the player announces
later are added to `behavior_specs` when their first agents appear.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fledge import __version__
from fledge.envs.api import (
    ActionTuple,
    AgentId,
    BaseEnv,
    BehaviorName,
    BehaviorSpec,
    DecisionSteps,
    StatsAggregationMethod,
    TerminalSteps,
    require_behavior,
    validate_actions,
)
from fledge.envs.unity import convert, wire
from fledge.envs.unity.communicator import UnityCommunicator
from fledge.envs.unity.launcher import PlayerProcess, find_executable
from fledge.envs.unity.protocol.observation_pb2 import BrainParametersProto
from fledge.envs.unity.protocol.unity_message_pb2 import (
    RESET,
    STEP,
    UnityInputProto,
    UnityOutputProto,
    UnityRLCapabilitiesProto,
    UnityRLInitializationInputProto,
    UnityRLInitializationOutputProto,
    UnityRLInputProto,
)
from fledge.envs.unity.side_channels import (
    EnvironmentParametersChannel,
    SideChannel,
    SideChannelManager,
    StatsSideChannel,
)
from fledge.envs.unity.versions import COMMUNICATION_VERSION, check_capabilities, check_versions
from fledge.errors import ActionError, ConfigError

log = logging.getLogger("fledge")

EDITOR_PORT = 5004
PLAYER_BASE_PORT = 5005


def capabilities() -> UnityRLCapabilitiesProto:
    """What fledge's side of the protocol supports: the capabilities of version 1.5.0 except training analytics
    (fledge sends no analytics, so it does not tell the player to expect any)."""
    return UnityRLCapabilitiesProto(
        baseRLCapabilities=True,
        concatenatedPngObservations=True,
        compressedChannelMapping=True,
        hybridActions=True,
        trainingAnalytics=False,
        variableLengthObservation=True,
        multiAgentGroups=True,
    )


class UnityEnvironment(BaseEnv):
    def __init__(
        self,
        file_name: str | None = None,
        *,
        worker_id: int = 0,
        base_port: int | None = None,
        seed: int = 0,
        no_graphics: bool = False,
        timeout_wait: float = 60,
        additional_args: Sequence[str] | None = None,
        side_channels: Sequence[SideChannel] | None = None,
        log_folder: str | Path | None = None,
        num_areas: int = 1,
    ) -> None:
        if file_name is None and worker_id != 0:
            raise ConfigError(f"The Unity Editor is one environment: worker_id must be 0, got {worker_id}.")
        if base_port is None:
            base_port = PLAYER_BASE_PORT if file_name is not None else EDITOR_PORT
        self.worker_id = worker_id
        self.port = base_port + worker_id
        self.num_areas = num_areas
        self.label = f"Unity worker {worker_id}"
        channels = list(side_channels or [])
        stats = [c for c in channels if isinstance(c, StatsSideChannel)]
        self._stats_channel = stats[0] if stats else StatsSideChannel()
        if not stats:
            channels.append(self._stats_channel)
        parameters = [c for c in channels if isinstance(c, EnvironmentParametersChannel)]
        self._parameters_channel = parameters[0] if parameters else EnvironmentParametersChannel()
        if not parameters:
            channels.append(self._parameters_channel)
        self._channels = SideChannelManager(channels, source=f"the Unity player of worker {worker_id}")
        self._specs: dict[BehaviorName, BehaviorSpec] = {}
        self._brains: dict[BehaviorName, BrainParametersProto] = {}  # brain parameters of behaviors without agents yet
        self._steps: dict[BehaviorName, tuple[DecisionSteps, TerminalSteps]] = {}
        self._actions: dict[BehaviorName, ActionTuple] = {}
        self._readers: dict[BehaviorName, wire.AgentInfoReader] = {}  # bulk readers of each behavior's agent infos
        self._process: PlayerProcess | None = None
        self._needs_reset = True
        self._closed = False
        executable = find_executable(file_name) if file_name is not None else None
        self._communicator = UnityCommunicator(worker_id=worker_id, port=self.port, timeout_wait=timeout_wait)
        try:
            if executable is not None:
                self._process = PlayerProcess(
                    executable,
                    worker_id=worker_id,
                    port=self.port,
                    log_folder=Path(log_folder) if log_folder is not None else None,
                    no_graphics=no_graphics,
                    additional_args=list(additional_args or []),
                )
            else:
                log.info(
                    "Listening on port %d. Start training by pressing the Play button in the Unity Editor.", self.port
                )
            init = UnityRLInitializationInputProto(
                seed=seed,
                communication_version=COMMUNICATION_VERSION,
                package_version=__version__,
                capabilities=capabilities(),
                num_areas=num_areas,
            )
            init_output, first = self._communicator.initialize(init, self._check_alive)
            self._unity = init_output
            check_versions(init_output, worker=self.label)
            self._handle(first, init_output)
            check_capabilities(init_output, self._specs, worker=self.label)
        except BaseException:
            self.close()
            raise

    # -- BaseEnv ------------------------------------------------------------------------------------
    @property
    def behavior_specs(self) -> Mapping[BehaviorName, BehaviorSpec]:
        return dict(self._specs)

    def environment_parameter_names(self) -> frozenset[str] | None:
        return None  # the scene reads the names it knows (EnvironmentParameters.GetWithDefault)

    def set_environment_parameters(self, draws: Mapping[str, Mapping[str, Any]]) -> None:
        """Queued on the EnvironmentParameters side channel; the player gets them with the next message
        (the player's own samplers draw the values, with the draw's seed)."""
        from fledge.curriculum.samplers import settings_of

        for name, draw in draws.items():
            sampler, seed = settings_of(draw)
            self._parameters_channel.send_sampler(name, sampler, seed)

    def reset(self) -> None:
        self._exchange(UnityRLInputProto(command=RESET))
        self._needs_reset = False

    def step(self) -> None:
        self.begin_step()
        self.finish_step()

    def begin_step(self) -> None:
        """Send the actions (the first half of `step`); `finish_step` waits for the player's answer."""
        if self._needs_reset:
            self._communicator.send(self._input(UnityRLInputProto(command=RESET)))
            self._needs_reset = False
            return
        rl_input = UnityRLInputProto(command=STEP)
        for name, (decision, _) in self._steps.items():
            if len(decision) == 0:
                continue
            action = self._actions.get(name)
            if action is None:
                action = self._specs[name].action_spec.empty_action(len(decision))
            convert.write_actions(rl_input.agent_actions[name], action)
        self._actions = {}
        self._communicator.send(self._input(rl_input))

    def finish_step(self) -> None:
        self._handle(self._communicator.receive(self._check_alive), None)

    def get_steps(self, behavior_name: BehaviorName) -> tuple[DecisionSteps, TerminalSteps]:
        require_behavior(self._specs, behavior_name)
        return self._steps[behavior_name]

    def set_actions(self, behavior_name: BehaviorName, action: ActionTuple) -> None:
        spec = require_behavior(self._specs, behavior_name)
        n = len(self._steps[behavior_name][0])
        self._actions[behavior_name] = validate_actions(behavior_name, spec.action_spec, action, n)

    def set_action_for_agent(self, behavior_name: BehaviorName, agent_id: AgentId, action: ActionTuple) -> None:
        spec = require_behavior(self._specs, behavior_name)
        decision = self._steps[behavior_name][0]
        row = decision.agent_id_to_index.get(int(agent_id))
        if row is None:
            raise ActionError(
                f"Behavior '{behavior_name}': agent {agent_id} did not request a decision in the last step."
            )
        one = validate_actions(behavior_name, spec.action_spec, action, 1)
        current = self._actions.get(behavior_name) or spec.action_spec.empty_action(len(decision))
        current.continuous[row] = one.continuous[0]
        current.discrete[row] = one.discrete[0]
        self._actions[behavior_name] = current

    def get_stats(self) -> dict[str, list[tuple[float, StatsAggregationMethod]]]:
        return self._stats_channel.get_and_reset_stats()

    def close(self) -> None:
        """Tell the player to quit (status 400), stop the server and end the player process."""
        if self._closed:
            return
        self._closed = True
        communicator = getattr(self, "_communicator", None)
        told = communicator.close() if communicator is not None else False
        if self._process is not None:
            self._process.stop(grace=5.0 if told else 0.0)  # a player never told to quit is terminated at once

    # -- internals ----------------------------------------------------------------------------------

    def _check_alive(self) -> None:
        if self._process is not None:
            self._process.check_alive()

    def _input(self, rl_input: UnityRLInputProto) -> UnityInputProto:
        rl_input.side_channel = self._channels.outgoing()
        return UnityInputProto(rl_input=rl_input)

    def _exchange(self, rl_input: UnityRLInputProto) -> None:
        self._handle(self._communicator.exchange(self._input(rl_input), self._check_alive), None)

    def _handle(self, output: UnityOutputProto, init: UnityRLInitializationOutputProto | None) -> None:
        """Read one output of the player: new behaviors, steps of every behavior, side-channel messages."""
        if init is None and output.HasField("rl_initialization_output"):
            init = output.rl_initialization_output
        if init is not None:
            for brain in init.brain_parameters:
                if brain.brain_name not in self._specs:
                    self._brains[brain.brain_name] = brain
        infos = output.rl_output.agentInfos
        for name in list(self._brains):
            if name in infos and len(infos[name].value) > 0:
                brain = self._brains.pop(name)
                self._specs[name] = convert.behavior_spec_from_proto(brain, infos[name].value[0])
        steps = {}
        for name, spec in self._specs.items():
            if name in infos:
                reader = self._readers.get(name)
                if reader is None:
                    reader = self._readers[name] = convert.agent_info_reader(spec)
                steps[name] = convert.steps_from_list(name, spec, infos[name], self.label, reader)
            else:
                steps[name] = convert.steps_from_infos(name, spec, [], self.label)
        self._steps = steps
        self._channels.process_incoming(output.rl_output.side_channel)
