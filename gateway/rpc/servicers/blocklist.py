"""courier.v1.Blocklist: protobuf to core, one core call, core to protobuf."""

from __future__ import annotations

from collections.abc import AsyncIterable

import grpc

from courier.v1 import blocklist_pb2, blocklist_pb2_grpc
from gateway.core.blocklist_service import BlocklistService
from gateway.core.model import Actor
from gateway.rpc.convert import blocklist as cv
from gateway.rpc.interceptor import current_principal


class BlocklistServicer(blocklist_pb2_grpc.BlocklistServicer):
    """The counterfeit blocklist: entries in and out, and the dry-run screen."""

    def __init__(self, service: BlocklistService) -> None:
        self._service = service

    async def AddEntry(
        self, request: blocklist_pb2.AddEntryRequest, context: grpc.aio.ServicerContext,
    ) -> blocklist_pb2.Entry:
        stored = await self._service.add_entry(cv.add_command(request), Actor(current_principal()))
        return cv.entry(stored)

    async def RetireEntry(
        self, request: blocklist_pb2.RetireEntryRequest, context: grpc.aio.ServicerContext,
    ) -> blocklist_pb2.Entry:
        stored = await self._service.retire_entry(request.id, request.reason, Actor(current_principal()))
        return cv.entry(stored)

    async def GetEntry(
        self, request: blocklist_pb2.GetEntryRequest, context: grpc.aio.ServicerContext,
    ) -> blocklist_pb2.Entry:
        return cv.entry(await self._service.get_entry(request.id))

    async def ListEntries(
        self, request: blocklist_pb2.ListEntriesRequest, context: grpc.aio.ServicerContext,
    ) -> blocklist_pb2.ListEntriesResponse:
        return cv.list_response(await self._service.list_entries(cv.list_query(request)))

    async def ImportEntries(
        self, request_iterator: AsyncIterable[blocklist_pb2.AddEntryRequest], context: grpc.aio.ServicerContext,
    ) -> blocklist_pb2.ImportSummary:
        summary = await self._service.import_entries(cv.add_commands(request_iterator), Actor(current_principal()))
        return cv.import_summary(summary)

    async def Screen(
        self, request: blocklist_pb2.ScreenRequest, context: grpc.aio.ServicerContext,
    ) -> blocklist_pb2.ScreenResponse:
        return cv.screen_response(self._service.screen(cv.screen_command(request)))
