"""Scenarios that spread each load generator's calls over several connections (accept-processes uses them).

SO_REUSEPORT hands each new connection to one of the processes on the port, so the load of one connection per load
generator lands on as many processes as there are generators, or fewer; these open several connections each.
"""
