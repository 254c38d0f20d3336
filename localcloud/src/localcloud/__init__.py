"""localcloud: an AWS-compatible endpoint on 127.0.0.1 that does the work for real, offline."""
