"""rosbag2 record and replay: episodes written as standard bags (MCAP or sqlite3, CDR-serialised standard
messages, through the `rosbags` library) and bags, the project's own or a robot's, replayed through the same
`EQAAgent` as every other driver. Needs the `bag` extra (rosbags); rclpy is not used."""
