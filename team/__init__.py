"""The engine of sbteam-tui: configuration, sandboxes, the seed's session and
tools, the Swarm, the run controller and its typed events. Never imports Textual."""
