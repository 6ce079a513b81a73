"""The one table that maps core errors to gRPC status codes, with rich details."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from gateway.core import errors as core

DOMAIN = "courier.v1"

STATUS_OF: dict[type[core.DomainError], grpc.StatusCode] = {
    core.InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    core.NotFound: grpc.StatusCode.NOT_FOUND,
    core.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    core.WrongState: grpc.StatusCode.FAILED_PRECONDITION,
    core.NotVerified: grpc.StatusCode.FAILED_PRECONDITION,
    core.StorageUnavailable: grpc.StatusCode.UNAVAILABLE,
    core.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    core.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
}


def status_code(error: core.DomainError) -> grpc.StatusCode:
    """The gRPC code of a core error (its nearest listed class)."""
    for cls in type(error).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return grpc.StatusCode.INTERNAL


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _details(error: core.DomainError) -> list[any_pb2.Any]:
    if isinstance(error, core.InvalidInput):
        violations = [error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                      for v in error.violations]
        return [_pack(error_details_pb2.BadRequest(field_violations=violations))]
    info = error_details_pb2.ErrorInfo(
        reason=type(error).__name__.upper(), domain=DOMAIN, metadata={"field": error.field} if error.field else {},
    )
    found = [_pack(info)]
    if isinstance(error, core.WrongState | core.NotVerified) and error.field:
        failure = error_details_pb2.PreconditionFailure.Violation(
            type=type(error).__name__.upper(), subject=error.field, description=error.message)
        found.append(_pack(error_details_pb2.PreconditionFailure(violations=[failure])))
    return found


def rich_status(error: core.DomainError) -> grpc.Status:
    """A grpc.Status whose trailing metadata carries google.rpc.Status with details."""
    code = status_code(error)
    message = error.message if not isinstance(error, core.InvalidInput) else _violation_text(error)
    status = status_pb2.Status(code=code.value[0], message=message, details=_details(error))
    return rpc_status.to_status(status)


def _violation_text(error: core.InvalidInput) -> str:
    return "; ".join(f"{v.field}: {v.description}" for v in error.violations)
