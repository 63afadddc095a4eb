from trading.models.account import Account
from trading.models.execution import Execution, Order, Position
from trading.models.paper import PaperAccount, PaperOrder, PaperPosition, PaperPrice, PaperProtective
from trading.models.protection import ProtectiveOrder
from trading.models.runtime import OrderBudget, SymbolLane, SymbolSetting, TradingHalt, WorkerHeartbeat
from trading.models.signal import Signal

__all__ = [
    "Account",
    "Execution",
    "Order",
    "OrderBudget",
    "PaperAccount",
    "PaperOrder",
    "PaperPosition",
    "PaperPrice",
    "PaperProtective",
    "Position",
    "ProtectiveOrder",
    "Signal",
    "SymbolLane",
    "SymbolSetting",
    "TradingHalt",
    "WorkerHeartbeat",
]
