"""The ROS 2 driver: `eqa_node` (the agent behind an AskQuestion action, fed RGB-D and poses, sending navigation
goals) and `sim_robot` (the built-in simulator as a ROS robot). Modules that need rclpy or ROS message packages
import them inside; `convert`, `pairing`, `tf_buffer` and `keyframes` need neither and are tested without ROS.
Frames and conventions: DESIGN.md section 2 (REP-103 world and base frames, optical camera frames)."""
