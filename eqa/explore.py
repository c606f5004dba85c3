"""Frontier-based exploration episodes in built-in houses (the FBE baseline)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from eqa.agent import Agent, AgentConfig
from eqa.episode import EpisodeSpec, run_episode, wrap_for_sim
from sim.config import SimConfig
from sim.env import SimEnv, SimEpisode


@dataclass
class ExploreConfig:
    """One exploration run: simulator, agent, start clearance (m) and house size (None = from the seed)."""

    sim: SimConfig = field(default_factory=SimConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    start_clearance: float = 0.5
    n_rooms: Optional[int] = None


def explore_house(seed: int, out_dir: str | Path, config: Optional[ExploreConfig] = None, rerun: bool = True,
                  progress: bool = True) -> dict:
    """FBE in the house of `seed` from a seeded start pose; writes the episode folder, returns the summary."""
    config = config or ExploreConfig()
    env = SimEnv.from_seed(seed, config.sim, n_rooms=config.n_rooms)
    start = env.random_start(np.random.default_rng([seed, 1]), clearance=config.start_clearance)
    spec = EpisodeSpec(episode_id=f"house{seed}", env_episode=SimEpisode(start=start), seed=seed,
                       floor_area_m2=env.scene.floor_area())
    agent = Agent(config.agent)
    summary = run_episode(env, agent, spec, out_dir, metrics=wrap_for_sim(env), rerun=rerun, progress=progress)
    env.scene.save(Path(out_dir) / "scene.json")
    return summary
