"""Linear operators: the LinOp protocol, the Hessian (HVP) operator and the dense oracle."""
from .dense import DenseHessian, dense_hessian
from .hessian import HessianOp, hessian_op
from .linop import FunctionOp, LinOp, dense_op

__all__ = ["LinOp", "FunctionOp", "dense_op", "hessian_op", "HessianOp", "dense_hessian", "DenseHessian"]
