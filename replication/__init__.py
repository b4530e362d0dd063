"""pix2pix replication suite: the package behind the `replication` command (see README.md)."""
