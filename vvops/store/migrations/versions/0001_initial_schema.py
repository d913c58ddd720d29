"""Initial schema: every table of the ops store.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 19:59:09.483033
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('approval_requests',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('procedure', sa.String(length=200), nullable=False),
    sa.Column('subject', sa.String(length=500), nullable=False),
    sa.Column('risk', sa.String(length=16), nullable=False),
    sa.Column('proposer', sa.String(length=200), nullable=False),
    sa.Column('required_role', sa.String(length=64), nullable=False),
    sa.Column('quorum', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('flow_run_id', sa.String(length=64), nullable=True),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.CheckConstraint("risk IN ('low', 'medium', 'high', 'critical')", name=op.f('ck_approval_requests_risk')),
    sa.CheckConstraint("status IN ('pending', 'approved', 'rejected', 'expired', 'escalated')", name=op.f('ck_approval_requests_status')),
    sa.CheckConstraint('quorum >= 1', name=op.f('ck_approval_requests_quorum_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_approval_requests'))
    )
    with op.batch_alter_table('approval_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_approval_requests_flow_run_id'), ['flow_run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_approval_requests_status_expires_at'), ['status', 'expires_at'], unique=False)

    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=200), nullable=False),
    sa.Column('subject', sa.String(length=500), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log')),
    sa.UniqueConstraint('hash', name=op.f('uq_audit_log_hash')),
    sa.UniqueConstraint('prev_hash', name=op.f('uq_audit_log_prev_hash'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_actor_at'), ['actor', 'at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_subject_at'), ['subject', 'at'], unique=False)

    op.create_table('backups',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('checksum', sa.String(length=128), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_backups'))
    )
    with op.batch_alter_table('backups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_backups_kind_created_at'), ['kind', 'created_at'], unique=False)

    op.create_table('chain_actions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('chain_id', sa.BigInteger(), nullable=False),
    sa.Column('from_address', sa.String(length=42), nullable=False),
    sa.Column('to_address', sa.String(length=42), nullable=True),
    sa.Column('nonce', sa.BigInteger(), nullable=True),
    sa.Column('selector', sa.String(length=10), nullable=True),
    sa.Column('data_hash', sa.String(length=66), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('signed_tx_hash', sa.String(length=66), nullable=True),
    sa.Column('raw_tx', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'broadcast', 'mined', 'failed', 'replaced')", name=op.f('ck_chain_actions_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chain_actions')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_chain_actions_idempotency_key'))
    )
    with op.batch_alter_table('chain_actions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chain_actions_chain_id_from_address_nonce'), ['chain_id', 'from_address', 'nonce'], unique=False)
        batch_op.create_index(batch_op.f('ix_chain_actions_signed_tx_hash'), ['signed_tx_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_chain_actions_status_updated_at'), ['status', 'updated_at'], unique=False)

    op.create_table('check_runs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('flow_name', sa.String(length=200), nullable=False),
    sa.Column('flow_run_id', sa.String(length=64), nullable=True),
    sa.Column('environment', sa.String(length=64), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.CheckConstraint("status IN ('running', 'ok', 'warn', 'crit', 'error')", name=op.f('ck_check_runs_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_check_runs'))
    )
    with op.batch_alter_table('check_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_check_runs_flow_name_started_at'), ['flow_name', 'started_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_check_runs_flow_run_id'), ['flow_run_id'], unique=False)

    op.create_table('drills',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rto_seconds', sa.Float(), nullable=True),
    sa.Column('rpo_seconds', sa.Float(), nullable=True),
    sa.Column('ok', sa.Boolean(), nullable=True),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_drills'))
    )
    with op.batch_alter_table('drills', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_drills_kind_started_at'), ['kind', 'started_at'], unique=False)

    op.create_table('incidents',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('severity', sa.String(length=2), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('commander', sa.String(length=200), nullable=True),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('mitigated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('is_drill', sa.Boolean(), nullable=False),
    sa.Column('slack_channel', sa.String(length=100), nullable=True),
    sa.Column('slack_thread_ts', sa.String(length=32), nullable=True),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.Column('root_cause', sa.Text(), nullable=True),
    sa.Column('report', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    sa.CheckConstraint("severity IN ('P0', 'P1', 'P2', 'P3')", name=op.f('ck_incidents_severity')),
    sa.CheckConstraint("status IN ('open', 'mitigated', 'resolved', 'closed')", name=op.f('ck_incidents_status')),
    sa.CheckConstraint("type IN ('technical', 'security', 'operational', 'external')", name=op.f('ck_incidents_type')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incidents')),
    sa.UniqueConstraint('key', name=op.f('uq_incidents_key'))
    )
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incidents_status_opened_at'), ['status', 'opened_at'], unique=False)

    op.create_table('metrics',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('labels', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('labels_key', sa.String(length=1000), nullable=False),
    sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metrics'))
    )
    with op.batch_alter_table('metrics', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_metrics_name_labels_key_ts'), ['name', 'labels_key', 'ts'], unique=False)
        batch_op.create_index(batch_op.f('ix_metrics_name_ts'), ['name', 'ts'], unique=False)

    op.create_table('notification_outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('sequence', sa.BigInteger(), nullable=False),
    sa.Column('channel', sa.String(length=100), nullable=False),
    sa.Column('thread_key', sa.String(length=200), nullable=True),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('slack_ts', sa.String(length=32), nullable=True),
    sa.Column('slack_channel_id', sa.String(length=32), nullable=True),
    sa.Column('claimed_by', sa.String(length=200), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'sending', 'sent', 'failed')", name=op.f('ck_notification_outbox_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_outbox')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_notification_outbox_idempotency_key'))
    )
    with op.batch_alter_table('notification_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notification_outbox_sequence'), ['sequence'], unique=False)
        batch_op.create_index(batch_op.f('ix_notification_outbox_status_next_attempt_at_sequence'), ['status', 'next_attempt_at', 'sequence'], unique=False)
        batch_op.create_index(batch_op.f('ix_notification_outbox_thread_key_sequence'), ['thread_key', 'sequence'], unique=False)

    op.create_table('processed_blocks',
    sa.Column('chain_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('number', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('hash', sa.String(length=66), nullable=False),
    sa.Column('parent_hash', sa.String(length=66), nullable=True),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('chain_id', 'number', name=op.f('pk_processed_blocks'))
    )
    op.create_table('slack_threads',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('thread_key', sa.String(length=200), nullable=False),
    sa.Column('channel', sa.String(length=100), nullable=False),
    sa.Column('ts', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_slack_threads')),
    sa.UniqueConstraint('thread_key', name=op.f('uq_slack_threads_thread_key'))
    )
    op.create_table('watcher_checkpoints',
    sa.Column('chain_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('watcher', sa.String(length=64), nullable=False),
    sa.Column('last_block', sa.BigInteger(), nullable=False),
    sa.Column('last_block_hash', sa.String(length=66), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('chain_id', 'watcher', name=op.f('pk_watcher_checkpoints'))
    )
    op.create_table('alerts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('fingerprint', sa.String(length=128), nullable=False),
    sa.Column('rule', sa.String(length=200), nullable=False),
    sa.Column('severity', sa.String(length=2), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('labels', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('annotations', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_notified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.String(length=200), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('incident_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("severity IN ('P0', 'P1', 'P2', 'P3')", name=op.f('ck_alerts_severity')),
    sa.CheckConstraint("status IN ('firing', 'resolved', 'silenced', 'acknowledged')", name=op.f('ck_alerts_status')),
    sa.CheckConstraint('count >= 1', name=op.f('ck_alerts_count_positive')),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_alerts_incident_id_incidents'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts'))
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alerts_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_rule'), ['rule'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_status_starts_at'), ['status', 'starts_at'], unique=False)
        batch_op.create_index('uq_alerts_active_fingerprint', ['fingerprint'], unique=True, sqlite_where=sa.text("status <> 'resolved'"), postgresql_where=sa.text("status <> 'resolved'"))

    op.create_table('approval_decisions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('request_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('approver', sa.String(length=200), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('accepted', sa.Boolean(), nullable=False),
    sa.Column('refusal_reason', sa.Text(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("decision IN ('approve', 'reject')", name=op.f('ck_approval_decisions_decision')),
    sa.CheckConstraint("source IN ('ui', 'slack', 'api')", name=op.f('ck_approval_decisions_source')),
    sa.ForeignKeyConstraint(['request_id'], ['approval_requests.id'], name=op.f('fk_approval_decisions_request_id_approval_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_approval_decisions'))
    )
    with op.batch_alter_table('approval_decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_approval_decisions_request_id_decided_at'), ['request_id', 'decided_at'], unique=False)
        batch_op.create_index('uq_approval_decisions_accepted_approver', ['request_id', 'approver'], unique=True, sqlite_where=sa.text('accepted'), postgresql_where=sa.text('accepted'))

    op.create_table('check_results',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('check_id', sa.String(length=200), nullable=False),
    sa.Column('area', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('threshold', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('hint', sa.Text(), nullable=True),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('served_by', sa.String(length=200), nullable=True),
    sa.Column('duration_ms', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('ok', 'warn', 'crit', 'error')", name=op.f('ck_check_results_status')),
    sa.ForeignKeyConstraint(['run_id'], ['check_runs.id'], name=op.f('fk_check_results_run_id_check_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_check_results')),
    sa.UniqueConstraint('run_id', 'check_id', name=op.f('uq_check_results_run_id_check_id'))
    )
    with op.batch_alter_table('check_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_check_results_check_id_created_at'), ['check_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_check_results_status_created_at'), ['status', 'created_at'], unique=False)

    op.create_table('incident_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('incident_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('data', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_events_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_events'))
    )
    with op.batch_alter_table('incident_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_events_incident_id_at'), ['incident_id', 'at'], unique=False)



def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('incident_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_events_incident_id_at'))

    op.drop_table('incident_events')
    with op.batch_alter_table('check_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_check_results_status_created_at'))
        batch_op.drop_index(batch_op.f('ix_check_results_check_id_created_at'))

    op.drop_table('check_results')
    with op.batch_alter_table('approval_decisions', schema=None) as batch_op:
        batch_op.drop_index('uq_approval_decisions_accepted_approver', sqlite_where=sa.text('accepted'), postgresql_where=sa.text('accepted'))
        batch_op.drop_index(batch_op.f('ix_approval_decisions_request_id_decided_at'))

    op.drop_table('approval_decisions')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('uq_alerts_active_fingerprint', sqlite_where=sa.text("status <> 'resolved'"), postgresql_where=sa.text("status <> 'resolved'"))
        batch_op.drop_index(batch_op.f('ix_alerts_status_starts_at'))
        batch_op.drop_index(batch_op.f('ix_alerts_rule'))
        batch_op.drop_index(batch_op.f('ix_alerts_incident_id'))

    op.drop_table('alerts')
    op.drop_table('watcher_checkpoints')
    op.drop_table('slack_threads')
    op.drop_table('processed_blocks')
    with op.batch_alter_table('notification_outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notification_outbox_thread_key_sequence'))
        batch_op.drop_index(batch_op.f('ix_notification_outbox_status_next_attempt_at_sequence'))
        batch_op.drop_index(batch_op.f('ix_notification_outbox_sequence'))

    op.drop_table('notification_outbox')
    with op.batch_alter_table('metrics', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_metrics_name_ts'))
        batch_op.drop_index(batch_op.f('ix_metrics_name_labels_key_ts'))

    op.drop_table('metrics')
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incidents_status_opened_at'))

    op.drop_table('incidents')
    with op.batch_alter_table('drills', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_drills_kind_started_at'))

    op.drop_table('drills')
    with op.batch_alter_table('check_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_check_runs_flow_run_id'))
        batch_op.drop_index(batch_op.f('ix_check_runs_flow_name_started_at'))

    op.drop_table('check_runs')
    with op.batch_alter_table('chain_actions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_chain_actions_status_updated_at'))
        batch_op.drop_index(batch_op.f('ix_chain_actions_signed_tx_hash'))
        batch_op.drop_index(batch_op.f('ix_chain_actions_chain_id_from_address_nonce'))

    op.drop_table('chain_actions')
    with op.batch_alter_table('backups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_backups_kind_created_at'))

    op.drop_table('backups')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_subject_at'))
        batch_op.drop_index(batch_op.f('ix_audit_log_actor_at'))

    op.drop_table('audit_log')
    with op.batch_alter_table('approval_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_approval_requests_status_expires_at'))
        batch_op.drop_index(batch_op.f('ix_approval_requests_flow_run_id'))

    op.drop_table('approval_requests')
