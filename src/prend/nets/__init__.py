"""Network architectures: RND nets, policies and the Atari-PB backbone/neck."""
