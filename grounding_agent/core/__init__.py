"""ROS-free, typed, deterministic core: types, result message, parser, relations, resolver."""
