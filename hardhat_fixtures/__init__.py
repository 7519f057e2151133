"""Mock contracts and named fixture scenarios for devnets, with Hardhat `loadFixture` semantics."""

from hardhat_fixtures.loader import FixtureLoader, ScenarioError, scenario, scenarios

__all__ = ["FixtureLoader", "ScenarioError", "scenario", "scenarios"]
