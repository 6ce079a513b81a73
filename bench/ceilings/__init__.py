"""Ceilings: what the bare machinery does on this machine (grpc.aio echo, asyncpg inserts), one file each."""
