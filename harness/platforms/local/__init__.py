"""The local platform: real redis-server processes, one network namespace per pod."""
