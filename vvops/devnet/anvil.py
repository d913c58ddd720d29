"""The devnet's anvil process: the implementation is plain chain code in `vvops.chain.anvil` (forks use it too)."""

from vvops.chain.anvil import (ANVIL_BIN_ENV, DEFAULT_CHAIN_ID, AnvilError, AnvilProcess, anvil_binary, free_port,
                               port_is_free, tail)

__all__ = ["ANVIL_BIN_ENV", "DEFAULT_CHAIN_ID", "AnvilError", "AnvilProcess", "anvil_binary", "free_port",
           "port_is_free", "tail"]
