from keymux.pool.pool import Lease, Pool

__all__ = ["Lease", "Pool"]
