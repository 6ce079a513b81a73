-- Generated from gateway/storage/layout.py (python -m gateway partitions citus-ddl); do not edit.
-- Run on the coordinator after `python -m gateway migrate`, as the owner of the tables.
CREATE EXTENSION IF NOT EXISTS citus;
-- The append-only and notify triggers stay in force on the shards.
SET citus.enable_unsafe_triggers TO on;

-- principals: every writer names its principal; small, read on every call, referenced by most tables
SELECT create_reference_table('principals');
-- api_tokens: looked up by token hash on every call; small
SELECT create_reference_table('api_tokens');
-- blocklist_entries: the whole list is loaded by every gateway process and joined by nothing else
SELECT create_reference_table('blocklist_entries');
-- blocklist_version: one row bumped with every list change, read with it
SELECT create_reference_table('blocklist_version');
-- rescreen_progress: one row, moved with the blocklist version
SELECT create_reference_table('rescreen_progress');
-- contract_customers: a few thousand business senders, joined to shipments by re-screening
SELECT create_reference_table('contract_customers');
-- divisions: the division codes and their names: a few thousand rows, joined to any table's region codes
SELECT create_reference_table('divisions');
-- sender_verifications: one row per verified sender, read by id or sender_ref on its own
SELECT create_distributed_table('sender_verifications', 'id', colocate_with => 'none');
-- shipments: the parcel: everything read with it shares its shard
SELECT create_distributed_table('shipments', 'id', colocate_with => 'none');
-- shipment_events: a parcel's history is read and written with the parcel
SELECT create_distributed_table('shipment_events', 'shipment_id', colocate_with => 'shipments');
-- inspection_photos: read and written with the parcel
SELECT create_distributed_table('inspection_photos', 'shipment_id', colocate_with => 'shipments');
-- leads: written with the parcel's hold, joined to it by the feed
SELECT create_distributed_table('leads', 'shipment_id', colocate_with => 'shipments');
-- shipment_waybills: keeps waybill numbers unique across shards (written with the parcel)
SELECT create_distributed_table('shipment_waybills', 'waybill_no', colocate_with => 'none');
-- shipment_idempotency_keys: keeps idempotency keys unique across shards (written with the parcel)
SELECT create_distributed_table('shipment_idempotency_keys', 'idempotency_key', colocate_with => 'none');
-- scan_events: once per event_id: its own key, since a scan may name no known parcel
SELECT create_distributed_table('scan_events', 'event_id', colocate_with => 'none');
-- sender_recipients: counted per sender: one sender's rows on one shard
SELECT create_distributed_table('sender_recipients', 'sender_bidx', colocate_with => 'none');
-- audit_records: a few rows per investigator call, read by case; ordered with the evidence log
SELECT citus_add_local_table_to_metadata('audit_records');
-- evidence_leaves: the evidence log has one sequential writer and a strict order: it stays on one node
SELECT citus_add_local_table_to_metadata('evidence_leaves');
-- evidence_nodes: part of the evidence log's tree
SELECT citus_add_local_table_to_metadata('evidence_nodes');
-- evidence_cursors: the evidence appender's position, moved with the leaves
SELECT citus_add_local_table_to_metadata('evidence_cursors');
-- evidence_heads: signed tree heads, written by the appender
SELECT citus_add_local_table_to_metadata('evidence_heads');
-- schema_migrations: the migration runner's own record
SELECT citus_add_local_table_to_metadata('schema_migrations');
