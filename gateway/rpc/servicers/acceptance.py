"""courier.v1.Acceptance: protobuf to core, one core call, core to protobuf."""

from __future__ import annotations

import grpc

from courier.v1 import acceptance_pb2, acceptance_pb2_grpc
from gateway.core.acceptance import AcceptanceService
from gateway.core.customers import CustomerService
from gateway.core.model import Actor
from gateway.core.verification import VerificationService
from gateway.rpc.convert import acceptance as convert
from gateway.rpc.interceptor import current_principal


class AcceptanceServicer(acceptance_pb2_grpc.AcceptanceServicer):
    """Real-name acceptance: VerifySender, RegisterContractCustomer, AcceptParcel."""

    def __init__(
        self, verification: VerificationService, customers: CustomerService, acceptance: AcceptanceService,
    ) -> None:
        self._verification = verification
        self._customers = customers
        self._acceptance = acceptance

    async def VerifySender(
        self, request: acceptance_pb2.VerifySenderRequest, context: grpc.aio.ServicerContext,
    ) -> acceptance_pb2.VerifySenderResponse:
        actor = Actor(current_principal(), terminal_id=request.terminal_id)
        result = await self._verification.verify_sender(convert.verify_command(request), actor)
        return convert.verify_response(result)

    async def RegisterContractCustomer(
        self, request: acceptance_pb2.RegisterContractCustomerRequest, context: grpc.aio.ServicerContext,
    ) -> acceptance_pb2.RegisterContractCustomerResponse:
        result = await self._customers.register(convert.register_command(request), Actor(current_principal()))
        return convert.register_response(result)

    async def AcceptParcel(
        self, request: acceptance_pb2.AcceptParcelRequest, context: grpc.aio.ServicerContext,
    ) -> acceptance_pb2.AcceptParcelResponse:
        actor = Actor(current_principal(), terminal_id=request.terminal_id)
        result = await self._acceptance.accept_parcel(convert.accept_command(request), actor)
        return convert.accept_response(result)
