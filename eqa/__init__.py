"""The agent, episode records, benchmark runner, CLI, replay and ROS 2 node."""
