"""Document storage sync: the leader Mac's documents pushed to the other Mac with rsync (the primary wins)."""
