"""Network architectures: RND nets, policies, the Atari-PB backbone/neck, SND's nets and AtariARI's encoder."""
