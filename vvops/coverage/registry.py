"""The coverage registry: for every playbook item, how it is done and by what.

Modes
-----
- `automated`: a flow/task does it; `implemented_by` names them.
- `assisted`:  code gathers the evidence (`implemented_by`) and a person decides. Where the person confirms:
  `on` = "daily" / "weekly" / "monthly" (a checklist line in that cadence's report, confirmed into the audit
  log), "approval:<policy>" (the approval step of config/procedures.yaml's policy, recorded with the approver in
  the audit log) or "incident" (the acknowledge/resolve forms of the incident-response run, recorded in the
  incident timeline and the audit log).
- `manual`:    people do it; it is a checklist line (`checklist`) in the `on` cadence's report with its owner
  role, and who/when is recorded when ticked. `implemented_by` may name a flow the person starts.

Event-driven human steps (per change, per upgrade, per incident) that no run records are listed on the cadence
report covering the period ("for each ... this week: ...").

The data is one `Entry` per playbook item, keyed by (heading path, item text); `coverage_problems()` compares
it to the parsed playbook.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field, replace
from typing import Iterable

from vvops.coverage.playbook import SEP, PlaybookItem

MODES = ("automated", "assisted", "manual")
CADENCES = ("daily", "weekly", "monthly")
ROLES = ("ops_lead", "sre", "protocol_specialist", "security_ops", "data_analyst", "support")


@dataclass(frozen=True)
class Entry:
    path: str                               # heading path, " / "-joined
    item: str                               # the bullet text (its bold label when it has one)
    mode: str
    implemented_by: tuple[str, ...] = ()    # "module:attribute"
    on: str | None = None                   # daily|weekly|monthly|approval:<policy>|incident
    owner_role: str | None = None
    checklist: str | None = None            # the checklist line (assisted on a cadence, manual)
    note: str | None = None                 # a known gap in the implementation, shown in the matrix

    @property
    def key(self) -> tuple[str, str]:
        return (self.path, self.item)

    @property
    def cadence(self) -> str | None:
        return self.on if self.on in CADENCES else None

    @property
    def checklist_text(self) -> str | None:
        if self.mode == "automated":
            return None
        return self.checklist or self.item


# ---- compact builders: group(path, defaults, entries); A = automated, S = assisted, M = manual -----------------

@dataclass(frozen=True)
class _Spec:
    item: str
    mode: str
    refs: tuple[str, ...] = ()
    on: str | None = None
    owner: str | None = None
    checklist: str | None = None


def A(item: str, *refs: str) -> _Spec:
    return _Spec(item, "automated", refs)


def S(item: str, *refs: str, on: str | None = None, owner: str | None = None, check: str | None = None) -> _Spec:
    return _Spec(item, "assisted", refs, on, owner, check)


def M(item: str, check: str | None = None, *, on: str | None = None, owner: str | None = None,
      refs: Iterable[str] = ()) -> _Spec:
    return _Spec(item, "manual", tuple(refs), on, owner, check)


def group(path: str, *specs: _Spec, on: str | None = None, owner: str | None = None) -> list[Entry]:
    return [Entry(path=path, item=s.item, mode=s.mode, implemented_by=s.refs, on=s.on or (on if s.mode != "automated" else None),
                  owner_role=s.owner or (owner if s.mode != "automated" else None), checklist=s.checklist)
            for s in specs]


# ---- the code the entries point at ---------------------------------------------------------------------------

DAILY = "flows.daily_checks:daily_checks"
PH = "flows.daily.protocol_health:protocol_health"
INFRA = "flows.daily.infrastructure:infrastructure_checks"
SECP = "flows.daily.security_posture:security_posture"
MAINT = "flows.daily.routine_maintenance:routine_maintenance"
REPORT = "tasks.daily_report:render_daily_report"
CONTEXT = "tasks.daily_report:gather_report_context"
WEEKLY = "flows.weekly_review:weekly_review"
CAPACITY = "flows.weekly_review:capacity_planning"
PLAN = "vvops.forecast:plan_capacity"
PROTO_ASSESS = "vvops.reviews.weekly:protocol_assessment"
MONTHLY = "flows.monthly_review:monthly_review"
CONTROLS = "vvops.reviews.compliance:evaluate_controls"
PARAM = "flows.parameter_change:parameter_change"
UPGRADE = "flows.upgrade_rollout:upgrade_rollout"
INCIDENT = "flows.incident_response:incident_response"
PAUSE = "flows.emergency_pause:emergency_pause"
UNPAUSE = "flows.unpause:unpause"
DRILL = "flows.dr_drill:dr_drill"
ALERT_SWEEP = "flows.alert_escalation:alert_escalation_sweep"
APPROVAL_SWEEP = "flows.approval_sweep:approval_escalation_sweep"
WATCHER = "vvops.watcher.service:run_watcher"
RULES = "vvops.watcher.conditions:ConditionEvaluator"
CLASSIFY = "vvops.procedures.incidents:classify"
EVIDENCE = "tasks.incidents:preserve_evidence"
PAGE = "tasks.incidents:page_responders"
TIMELINE = "tasks.incidents:add_event"
IREPORT = "tasks.incidents:write_incident_report"
REMINDERS = "tasks.incidents:sweep_status_reminders"
RECOVERY = "tasks.incidents:verify_recovery"
FAILOVER = "tasks.incidents:activate_rpc_failover"
GUARDIAN = "tasks.governance:guardian_pause"
SIMULATE = "tasks.simulation:simulate_on_fork"
TIMELOCK = "tasks.governance:run_through_timelock"
PROC_UPDATE = "tasks.governance:procedure_update"
IMPACT = "vvops.procedures.impact:diff_health"
VALIDATE = "vvops.procedures.parameters:validate_parameter_change"
NOTIFY = "tasks.notify:notify"
AUDIT = "tasks.store:audit"
PUBLISH = "tasks.reports:publish_markdown"
COVERAGE = "vvops.coverage.registry:coverage_problems"
MATRIX = "vvops.coverage.matrix:render_matrix"
GRAFANA = "vvops.observability.dashboards:DASHBOARDS"
PROM_STORE = "vvops.observability.store_collector:StoreCollector"
PROM_WATCHER = "vvops.observability.watcher_metrics:WatcherMetrics"
STATEMENT = "flows.public_statement:public_statement"
STATEMENT_SEND = "tasks.communications:publish_statement"
ANNOUNCE = "flows.announcement:announcement"
ANNOUNCE_SEND = "tasks.communications:publish_announcement"

RO = "Regular Operations"
PO = "Protocol Operations"
IO = "Infrastructure Operations"
IM = "Incident Management"
CP = "Communication Protocols"
OR = "Operational Resilience"
CI = "Continuous Improvement"


def _p(*parts: str) -> str:
    return SEP.join(parts)


def _with_gaps(entries: list[Entry]) -> list[Entry]:
    """Entries with known gaps carry a note (none today: the protocol assessment's inputs gas_per_call,
    fees_collected_usd, withdrawal_limit_hits and vault_param are recorded by the daily protocol-health checks)."""
    return entries


REGISTRY: list[Entry] = _with_gaps([
    # ================================================================ Operational Structure / Operational Coverage
    *group(_p("Operational Structure", "Operational Coverage"),
           A("24/7 Monitoring", WATCHER, DAILY, "flows.ops_sweep:ops_sweep", ALERT_SWEEP),
           M("Working Hours Support", "Business-hours coverage for next week confirmed (who covers each region)",
             on="weekly", owner="ops_lead"),
           A("On-Call Rotation", "vvops.config.oncall:who_is_on_call", "vvops.alerting.escalation:resolve_targets",
             ALERT_SWEEP),
           A("Emergency Response Team", INCIDENT, PAGE),
           M("Geographic Distribution", "Roster time zones reviewed: every rotation has follow-the-sun cover",
             on="monthly", owner="ops_lead", refs=["vvops.config.oncall:upcoming_shifts"])),

    # ================================================================ Regular Operations / Daily
    *group(_p(RO, "Daily Operations", "System Health Checks", "Protocol Health Verification"),
           A("Smart contract state verification", PH, "tasks.chain:check_contract_state", "tasks.chain:read_contract_state"),
           A("On-chain activity monitoring", PH, "tasks.chain:check_onchain_activity", WATCHER),
           A("Gas price and network conditions", PH, "tasks.chain:check_network_conditions"),
           A("Transaction throughput assessment", PH, "tasks.chain:check_onchain_activity",
             "vvops.chain.activity:vault_activity"),
           A("Error rate monitoring", PH, "tasks.chain:check_tx_error_rate")),
    *group(_p(RO, "Daily Operations", "System Health Checks", "Infrastructure Checks"),
           A("Server performance metrics", INFRA, "tasks.infra:check_host"),
           A("API availability and response times", INFRA, "tasks.infra:probe_http_endpoint"),
           A("Database performance and integrity", INFRA, "tasks.infra:check_database",
             "tasks.maintenance:check_data_integrity"),
           A("Storage capacity and utilization", INFRA, "tasks.infra:check_storage"),
           A("Network performance and connectivity", "tasks.chain:check_rpc_latency", "tasks.infra:probe_http_endpoint")),
    *group(_p(RO, "Daily Operations", "System Health Checks", "Security Posture"),
           A("Security alert review", SECP, "tasks.security:review_open_alerts"),
           A("Access log analysis", SECP, "tasks.security:analyse_access_logs_task"),
           A("Certificate and credential status", SECP, "tasks.security:check_tls_endpoint",
             "tasks.security:check_certificate_files", "tasks.security:review_credentials"),
           M("Threat intelligence updates", "Threat-intelligence feeds and advisories read; relevant items raised as "
             "alerts or incidents", on="daily", owner="security_ops"),
           A("Vulnerability scan results", SECP, "tasks.security:review_vulnerability_reports")),
    *group(_p(RO, "Daily Operations", "Routine Maintenance", "Data Management"),
           A("Log rotation and archiving", MAINT, "tasks.maintenance:rotate_logs"),
           A("Database maintenance operations", MAINT, "tasks.maintenance:optimise_storage"),
           A("Backup verification", MAINT, "tasks.maintenance:take_store_backup", "tasks.maintenance:verify_newest_backup"),
           A("Data integrity checks", MAINT, "tasks.maintenance:check_data_integrity", "tasks.data_quality:validate_database"),
           A("Storage optimization", MAINT, "tasks.maintenance:optimise_storage")),
    *group(_p(RO, "Daily Operations", "Routine Maintenance", "Performance Optimization"),
           S("Resource utilization review", "tasks.infra:check_host", "tasks.infra:check_storage",
             check="Host and storage utilisation in today's report reviewed; actions noted"),
           S("Bottleneck identification", "tasks.chain:check_rpc_latency", "tasks.infra:probe_http_endpoint",
             check="Slowest endpoints/checks in today's report looked at; bottleneck noted (or none)"),
           M("Cache management", "Caches (RPC/API) checked; stale entries cleared"),
           M("Query optimization", "Slow store/API queries looked at; fixes filed"),
           M("Load balancing adjustment", "Load-balancer weights checked against today's traffic"),
           on="daily", owner="sre"),
    *group(_p(RO, "Daily Operations", "Routine Maintenance", "Documentation Updates"),
           S("Procedure currency verification", COVERAGE, MATRIX,
             check="Playbook coverage test green; procedures changed today reflected in config/procedures.yaml"),
           M("Knowledge base maintenance", "Knowledge base updated with today's fixes and findings"),
           A("Updated metrics recording", "tasks.store:record_metrics", "tasks.store:record_check_run"),
           A("Incident response documentation", TIMELINE, IREPORT),
           M("Training material updates", "Training material touched by today's changes updated"),
           on="daily", owner="ops_lead"),
    *group(_p(RO, "Daily Operations", "Daily Reporting", "Operations Dashboard Update"),
           A("Key performance indicators", DAILY, REPORT),
           A("System health metrics", REPORT, "tasks.reports:publish_check_table"),
           A("Incident summary", CONTEXT, REPORT),
           A("Outstanding issues", CONTEXT, REPORT),
           A("Planned activities", CONTEXT, REPORT)),
    *group(_p(RO, "Daily Operations", "Daily Reporting", "Team Coordination"),
           M("Daily standup meeting", "Daily standup held (failing checks, open incidents, approvals waiting)"),
           S("Issue prioritization", REPORT, check="Failing checks and open incidents in today's report prioritised"),
           M("Task assignment", "Each failing check / open item has an owner"),
           M("Cross-team coordination", "Dependencies on other teams raised in their channels"),
           S("Handoff for 24/7 coverage", CONTEXT, "tasks.oncall_handoff:oncall_handoff_sweep",
             check="On-call handoff acknowledged by the incoming on-call (handoff table in today's report)"),
           on="daily", owner="ops_lead"),

    # ================================================================ Regular Operations / Weekly
    *group(_p(RO, "Weekly Activities", "System Maintenance", "Scheduled Maintenance"),
           M("Non-critical updates implementation", "Non-critical updates applied in a declared maintenance window",
             refs=["vvops.config.alerting_schema:MaintenanceWindow"]),
           M("Configuration optimizations", "Configuration changes of the week merged and validated (`vvops config check`)"),
           M("Minor feature deployments", "Minor features deployed this week listed"),
           M("Performance improvements", "Performance improvements of the week listed"),
           M("Technical debt reduction", "Technical-debt items closed this week listed"),
           on="weekly", owner="sre"),
    *group(_p(RO, "Weekly Activities", "System Maintenance", "Capacity Planning"),
           A("Resource utilization trends", CAPACITY, PLAN),
           A("Growth forecasting", CAPACITY, "vvops.forecast:fit_trend"),
           S("Capacity adjustment planning", CAPACITY, "vvops.forecast:limit_crossing",
             check="Series forecast to cross their limit within the horizon have a capacity action"),
           S("Scalability assessment", CAPACITY, "vvops.forecast:days_to_limit",
             check="Scalability of the components nearest their limit assessed"),
           M("Resource procurement planning", "Procurement needed for next quarter's capacity requested",
             owner="ops_lead"),
           on="weekly", owner="sre"),
    *group(_p(RO, "Weekly Activities", "System Maintenance", "Protocol Assessment"),
           S("Protocol parameter review", PROTO_ASSESS, WEEKLY,
             check="Parameters in force vs outcomes (weekly report) reviewed; changes proposed if needed"),
           A("Smart contract performance", PROTO_ASSESS, WEEKLY),
           S("Gas optimization opportunities", PROTO_ASSESS, check="Gas per function reviewed; optimisation candidates filed"),
           A("Integration status review", "vvops.reviews.weekly:integrations_health", WEEKLY),
           M("Protocol improvement identification", "Protocol improvement ideas of the week recorded"),
           on="weekly", owner="protocol_specialist"),
    *group(_p(RO, "Weekly Activities", "Team Activities", "Weekly Operations Review"),
           S("Performance metric review", WEEKLY, "vvops.reviews.weekly:pass_rate_by_area",
             check="Weekly operations review held: check pass rates and failed runs reviewed"),
           S("Incident retrospectives", "vvops.reviews.weekly:incident_stats", "vvops.reviews.weekly:open_action_items",
             "tasks.reviews:load_action_items",
             check="Incidents of the week retrospected; open and overdue action items reviewed with their owners"),
           M("Process improvement discussion", "Process improvements discussed; decisions recorded"),
           M("Upcoming work planning", "Next week's work planned (approvals pending, on-call next week)"),
           M("Resource allocation review", "People allocated to next week's work"),
           on="weekly", owner="ops_lead"),
    *group(_p(RO, "Weekly Activities", "Team Activities", "Cross-functional Synchronization"),
           M("Development team coordination", "Sync with the development team held"),
           M("Governance liaison updates", "Governance liaison update given/received", owner="protocol_specialist"),
           M("Community feedback review", "Community feedback of the week reviewed", owner="support"),
           M("Partner coordination", "Partner sync held; open partner issues tracked", owner="support"),
           M("Stakeholder communication", "Weekly stakeholder update sent"),
           on="weekly", owner="ops_lead"),
    *group(_p(RO, "Weekly Activities", "Team Activities", "Training and Development"),
           M("Team skill development", "Skill-development time taken this week (who, what)"),
           M("Knowledge sharing sessions", "Knowledge-sharing session held (topic, presenter)"),
           M("New procedure training", "Team trained on procedures changed this week"),
           M("Tool familiarity improvement", "Tool walkthrough / drill of the week done", owner="sre"),
           M("External learnings review", "External incidents/post-mortems of the week reviewed", owner="security_ops"),
           on="weekly", owner="ops_lead"),

    # ================================================================ Regular Operations / Monthly
    *group(_p(RO, "Monthly Activities", "Strategic Operations", "Performance Review"),
           A("Comprehensive performance analysis", MONTHLY, "vvops.reviews.monthly:availability",
             "vvops.reviews.monthly:latency_p95"),
           A("Long-term trend identification", MONTHLY, "vvops.reviews.monthly:month_over_month"),
           S("Systemic issue identification", MONTHLY, "vvops.reviews.monthly:check_durations",
             check="Recurring failures and incidents of the month reviewed; systemic issues filed"),
           S("Operational efficiency assessment", MONTHLY, "vvops.reviews.monthly:check_durations",
             check="Operational efficiency (check durations, MTTA/MTTR) assessed"),
           M("Cost optimization review", "Infrastructure and gas costs of the month reviewed"),
           on="monthly", owner="ops_lead"),
    *group(_p(RO, "Monthly Activities", "Strategic Operations", "Security Review"),
           S("Monthly security assessment", MONTHLY, "vvops.reviews.monthly:certificate_inventory",
             "vvops.reviews.monthly:credentials_age", check="Security section of the monthly report assessed and signed off"),
           A("Vulnerability management status", MONTHLY, "vvops.reviews.monthly:vulnerability_status"),
           A("Security patch compliance", "vvops.reviews.monthly:vulnerability_status",
             "tasks.security:review_vulnerability_reports"),
           M("Security posture improvement planning", "Security improvements for next month planned"),
           M("Threat model updates", "Threat model updated for the month's changes"),
           on="monthly", owner="security_ops"),
    *group(_p(RO, "Monthly Activities", "Strategic Operations", "Process Optimization"),
           S("Procedural gap identification", COVERAGE, MATRIX,
             check="Coverage matrix reviewed: gaps and manual items worth automating noted"),
           S("Automation opportunity assessment", MATRIX, check="Automation candidates picked from the manual items"),
           S("Process efficiency improvements", "vvops.reviews.process_improvement:process_improvement",
             check="MTTA/MTTR trend, repeat causes and action-item follow-through reviewed; improvements recorded"),
           M("Operational friction reduction", "Top friction points raised by the team addressed or filed"),
           M("Best practice incorporation", "Best practices adopted this month recorded"),
           on="monthly", owner="ops_lead"),
    *group(_p(RO, "Monthly Activities", "Governance and Compliance", "Governance Participation"),
           M("Operational input to governance proposals", "Operational input given on this month's governance proposals",
             owner="protocol_specialist"),
           S("Technical implementation planning for approved proposals", PARAM, UPGRADE, on="approval:parameter_change"),
           A("Operational impact assessment of proposed changes", SIMULATE, IMPACT),
           A("Implementation feasibility analysis", VALIDATE, SIMULATE),
           A("Post-implementation verification", PARAM, IMPACT, "vvops.reviews.monthly:governance_changes"),
           on="monthly", owner="ops_lead"),
    *group(_p(RO, "Monthly Activities", "Governance and Compliance", "Compliance Verification"),
           M("Regulatory requirement adherence check", "Regulatory requirements checked with legal for the month"),
           A("Policy compliance verification", CONTROLS, "vvops.reviews.compliance:change_approvals_control"),
           M("Audit finding resolution status", "Open audit findings and their resolution status reviewed",
             owner="security_ops"),
           S("Documentation completeness review", "vvops.reviews.compliance:post_incident_reports_control", COVERAGE,
             check="Post-incident reports and procedure docs complete (compliance section)"),
           A("Control effectiveness assessment", CONTROLS, "vvops.reviews.compliance:audit_chain_control",
             "vvops.reviews.compliance:drills_control"),
           on="monthly", owner="ops_lead"),

    # ================================================================ Protocol Operations
    *group(_p(PO, "Parameter Management", "Parameter Assessment", "Parameter Performance Monitoring"),
           A("Effect analysis of current parameters", PROTO_ASSESS),
           A("Performance metric tracking", PH, "tasks.store:record_metrics"),
           S("User impact assessment", PROTO_ASSESS, "vvops.chain.activity:vault_activity",
             check="User impact of parameters in force assessed (deposits, withdrawals, users)"),
           S("Unintended consequence identification", PROTO_ASSESS, IMPACT,
             check="Unexpected effects of this week's parameter changes looked for"),
           M("Optimization opportunity analysis", "Parameter optimisation opportunities noted"),
           on="weekly", owner="protocol_specialist"),
    *group(_p(PO, "Parameter Management", "Parameter Assessment", "Parameter Change Identification"),
           M("Performance optimization opportunities", "Parameter changes for performance considered"),
           M("Security enhancement needs", "Parameter changes for security considered", owner="security_ops"),
           M("User experience improvements", "Parameter changes for user experience considered", owner="support"),
           M("Market condition adaptations", "Parameters checked against this week's market conditions"),
           M("Protocol efficiency optimizations", "Parameter changes for protocol efficiency considered"),
           on="weekly", owner="protocol_specialist"),
    *group(_p(PO, "Parameter Management", "Parameter Change Process", "Change Preparation"),
           A("Parameter change proposal documentation", PARAM, "vvops.procedures.parameters:ParameterProposal", PUBLISH),
           A("Technical impact analysis", SIMULATE, IMPACT),
           S("Risk assessment", VALIDATE, "vvops.approvals.policy:tally", on="approval:parameter_change"),
           A("Implementation plan", PARAM, TIMELOCK),
           A("Rollback plan", PARAM)),
    *group(_p(PO, "Parameter Management", "Parameter Change Process", "Governance Submission"),
           A("Parameter proposal submission", "tasks.governance:schedule_on_timelock", PARAM),
           S("Technical justification preparation", PARAM, SIMULATE, on="approval:parameter_change"),
           M("Community discussion facilitation", "For each parameter change this week: community discussion facilitated"),
           M("Technical question response", "For each parameter change this week: community questions answered"),
           S("Voting outcome monitoring", "tasks.approvals:request_approval", "tasks.governance:wait_for_timelock_delay",
             on="approval:parameter_change"),
           on="weekly", owner="protocol_specialist"),
    *group(_p(PO, "Parameter Management", "Parameter Change Process", "Implementation and Verification"),
           A("Technical implementation upon approval", PARAM, "tasks.governance:execute_on_timelock"),
           A("Post-change monitoring", PARAM, "tasks.chain:contract_state_outcomes", WATCHER),
           A("Effect verification", IMPACT),
           A("Documentation update", AUDIT, PUBLISH),
           A("Stakeholder communication", PROC_UPDATE)),
    *group(_p(PO, "Protocol Upgrades", "Upgrade Planning", "Upgrade Preparation"),
           M("Upgrade requirement analysis", "For each planned upgrade: requirements written"),
           M("Technical specification review", "For each planned upgrade: specification reviewed"),
           S("Risk assessment", "tasks.upgrades:check_storage_layout", "tasks.upgrades:verify_bytecode",
             on="approval:upgrade_rollout"),
           M("Testing plan development", "For each planned upgrade: testing plan written"),
           A("Rollout strategy design", "vvops.procedures.upgrades:rollout_stages"),
           on="weekly", owner="protocol_specialist"),
    *group(_p(PO, "Protocol Upgrades", "Upgrade Planning", "Pre-implementation Testing"),
           A("Testnet deployment", "tasks.upgrades:rehearse_upgrade"),
           M("Integration testing", "For each planned upgrade: integration tests with partners passed"),
           M("Performance testing", "For each planned upgrade: gas/performance tested"),
           M("Security testing", "For each planned upgrade: audit/security review done", owner="security_ops"),
           A("Migration testing", "tasks.upgrades:check_storage_layout", "tasks.upgrades:rehearse_upgrade"),
           on="weekly", owner="protocol_specialist"),
    *group(_p(PO, "Protocol Upgrades", "Upgrade Planning", "Rollout Planning"),
           M("Deployment schedule development", "For each planned upgrade: deployment date agreed"),
           M("Resource allocation", "For each planned upgrade: people on duty named", owner="ops_lead"),
           S("Communication plan preparation", ANNOUNCE, ANNOUNCE_SEND, on="approval:public_statement",
             owner="support", check="For each planned upgrade: user/partner announcement sent (topic upgrade)"),
           A("Monitoring strategy", "tasks.upgrades:start_stabilisation", "tasks.upgrades:checkpoint"),
           A("Rollback preparation", "tasks.upgrades:pre_upgrade_snapshot", UPGRADE),
           on="weekly", owner="protocol_specialist"),
    *group(_p(PO, "Protocol Upgrades", "Upgrade Execution", "Pre-deployment Checklist"),
           S("Final go/no-go assessment", UPGRADE, "tasks.upgrades:rehearse_upgrade", on="approval:upgrade_rollout"),
           A("System backup verification", "tasks.upgrades:pre_upgrade_snapshot"),
           S("Team readiness confirmation", UPGRADE, "vvops.approvals.policy:eligible_approvers",
             on="approval:upgrade_rollout"),
           A("Communication initiation", UPGRADE, "vvops.notify.messages:approval_request"),
           A("Monitoring system preparation", "tasks.upgrades:start_stabilisation", "vvops.watcher.conditions:approval_matches")),
    *group(_p(PO, "Protocol Upgrades", "Upgrade Execution", "Deployment Process"),
           A("Sequential deployment steps", UPGRADE, "tasks.upgrades:upgrade_stage", "vvops.procedures.upgrades:rollout_stages"),
           A("Progress monitoring", UPGRADE, "tasks.upgrades:checkpoint"),
           A("Checkpoint verification", "tasks.upgrades:checkpoint", "vvops.procedures.upgrades:evaluate_checkpoint"),
           A("Issue identification and resolution", UPGRADE, "vvops.procedures.upgrades:evaluate_checkpoint"),
           A("Status communication", UPGRADE, PUBLISH, "vvops.notify.messages:approval_update")),
    *group(_p(PO, "Protocol Upgrades", "Upgrade Execution", "Post-deployment Verification"),
           A("Functionality verification", "tasks.upgrades:checkpoint"),
           A("Performance assessment", "tasks.upgrades:checkpoint", PH),
           A("Error monitoring", "tasks.chain:check_tx_error_rate", WATCHER),
           S("User impact assessment", "vvops.chain.activity:vault_activity", on="weekly", owner="protocol_specialist",
             check="For each upgrade this week: user impact assessed"),
           A("Rollback trigger monitoring", "vvops.procedures.upgrades:evaluate_checkpoint", UPGRADE)),
    *group(_p(PO, "Protocol Upgrades", "Post-upgrade Activities", "Stabilization Period"),
           A("Heightened monitoring", "tasks.upgrades:start_stabilisation", "flows.stabilisation_checks:stabilisation_checks",
             "vvops.procedures.upgrades:stabilisation_check_due"),
           S("Quick issue resolution", INCIDENT, on="incident"),
           M("User support reinforcement", "Support staffed up during an upgrade's stabilisation window", on="daily",
             owner="support"),
           M("Performance optimization", "For each upgrade this week: post-upgrade performance tuned", on="weekly",
             owner="protocol_specialist"),
           A("Documentation updates", PUBLISH, AUDIT)),
    *group(_p(PO, "Protocol Upgrades", "Post-upgrade Activities", "Retrospective Analysis"),
           M("Upgrade process assessment", "For each upgrade this week: retrospective held"),
           M("Issue identification and analysis", "For each upgrade this week: issues analysed"),
           S("Success metric evaluation", "tasks.upgrades:checkpoint", PH,
             check="For each upgrade this week: checkpoints and health after the upgrade evaluated"),
           M("Lessons learned documentation", "For each upgrade this week: lessons learned written"),
           M("Process improvement identification", "For each upgrade this week: process improvements filed"),
           on="weekly", owner="ops_lead"),
    *group(_p(PO, "Smart Contract Operations", "Contract Monitoring", "State Monitoring"),
           A("Contract state variable tracking", "tasks.chain:read_contract_state", RULES),
           A("Function call patterns", "vvops.chain.activity:transactions_to", RULES),
           A("Event emission monitoring", "vvops.chain.logs:fetch_logs", WATCHER),
           A("Gas usage patterns", PROTO_ASSESS),
           A("Error and revert tracking", "tasks.chain:check_tx_error_rate", "vvops.chain.abi:decode_revert")),
    *group(_p(PO, "Smart Contract Operations", "Contract Monitoring", "Performance Assessment"),
           A("Transaction throughput", "tasks.chain:check_onchain_activity"),
           A("Gas efficiency", PROTO_ASSESS),
           M("Execution time", "Confirmation time of vault transactions sampled"),
           M("State growth rate", "Contract state growth (positions, storage) reviewed"),
           S("Cost analysis", PROTO_ASSESS, check="Gas cost per function converted to user cost and reviewed"),
           on="weekly", owner="protocol_specialist"),
    *group(_p(PO, "Smart Contract Operations", "Contract Monitoring", "Security Vigilance"),
           A("Unusual activity detection", RULES, WATCHER),
           A("Function call pattern analysis", RULES),
           A("Access attempt monitoring", RULES, "tasks.security:analyse_access_logs_task"),
           M("External contract interaction review", "External contracts the vault called this week reviewed",
             on="weekly", owner="security_ops"),
           A("Exploit attempt identification", RULES, INCIDENT)),
    *group(_p(PO, "Smart Contract Operations", "Contract Maintenance", "Regular Assessment"),
           M("Code review for optimization opportunities", "Contract code reviewed for optimisation"),
           S("Gas usage optimization", PROTO_ASSESS, on="weekly", check="Gas-heavy functions picked for optimisation"),
           S("Function utilization analysis", PROTO_ASSESS, "vvops.chain.activity:vault_activity",
             check="Rarely/never used functions listed"),
           M("Deprecated functionality identification", "Deprecated functions identified"),
           M("Enhancement opportunity identification", "Contract enhancement ideas recorded"),
           on="monthly", owner="protocol_specialist"),
    *group(_p(PO, "Smart Contract Operations", "Contract Maintenance", "Operational Adjustments"),
           S("Parameter tuning", PARAM, on="approval:parameter_change"),
           A("Gas price strategy adjustments", "vvops.chain.actions:FeePolicy", "vvops.chain.gas:fee_summary"),
           M("Interaction pattern optimization", "Keeper/ops transaction patterns reviewed"),
           M("User experience improvements", "UX improvements from support feedback filed", owner="support"),
           M("Integration enhancements", "Integration enhancements agreed with partners", owner="support"),
           on="monthly", owner="protocol_specialist"),

    # ================================================================ Infrastructure Operations
    *group(_p(IO, "Core Infrastructure", "Node Operation", "Node Health Management"),
           A("Synchronization status monitoring", "vvops.chain.gas:sync_status", "tasks.chain:check_network_conditions"),
           M("Peer connection management", "Node/RPC provider peer counts reviewed", on="weekly"),
           M("Resource utilization optimization", "Node resource usage reviewed and tuned", on="weekly"),
           A("Block propagation performance", "vvops.chain.gas:block_timing", "tasks.chain:check_network_conditions"),
           M("Version update management", "Node client versions current; upgrades scheduled", on="monthly"),
           owner="sre"),
    *group(_p(IO, "Core Infrastructure", "Node Operation", "Node Security"),
           S("Access control enforcement", "tasks.security:analyse_access_logs_task",
             check="Node access lists reviewed against the access-log findings"),
           S("Patch management", "tasks.security:review_vulnerability_reports", check="Node patches applied within SLA"),
           M("Configuration hardening", "Node configuration hardening reviewed"),
           M("Network security implementation", "Firewall/network rules of the nodes reviewed"),
           A("Vulnerability management", "tasks.security:review_vulnerability_reports",
             "vvops.reviews.monthly:vulnerability_status"),
           on="monthly", owner="sre"),
    *group(_p(IO, "Core Infrastructure", "Node Operation", "Performance Optimization"),
           M("Hardware resource allocation", "Node hardware allocation reviewed"),
           M("Configuration tuning", "Node configuration tuned"),
           M("Network optimization", "Node network settings reviewed"),
           S("Database performance tuning", "tasks.infra:check_database", check="Store/database performance tuned"),
           M("Caching strategy implementation", "Caching strategy reviewed"),
           on="monthly", owner="sre"),
    *group(_p(IO, "Core Infrastructure", "API Service Management", "Availability Maintenance"),
           A("Service health monitoring", INFRA, "tasks.infra:probe_http_endpoint"),
           M("Load balancing optimization", "API load balancing reviewed"),
           M("Rate limiting configuration", "API rate limits reviewed"),
           A("Capacity management", CAPACITY, PLAN),
           A("Failover testing and implementation", FAILOVER, "tasks.chain:rpc_latency_outcomes"),
           on="monthly", owner="sre"),
    *group(_p(IO, "Core Infrastructure", "API Service Management", "Performance Tuning"),
           S("Response time optimization", "vvops.reviews.monthly:latency_p95",
             check="Endpoints over their p95 target tuned"),
           M("Resource allocation", "API resources reviewed"),
           M("Query optimization", "Slow API queries optimised"),
           M("Caching implementation", "API caching reviewed"),
           A("Connection management", "vvops.chain.rpc:RpcClient"),
           on="monthly", owner="sre"),
    *group(_p(IO, "Core Infrastructure", "API Service Management", "Documentation and Support"),
           M("API documentation maintenance", "API docs updated for the month's changes"),
           M("Example code updates", "Example code updated"),
           M("Support request handling", "Support requests of the day answered", on="daily"),
           M("Usage pattern analysis", "API usage patterns analysed", owner="data_analyst"),
           M("Improvement implementation", "API improvements from support requests filed"),
           on="monthly", owner="support"),
    *group(_p(IO, "Monitoring Systems", "Metric Collection", "Infrastructure Metrics"),
           A("Resource utilization (CPU, memory, disk, network)", "tasks.infra:check_host", "tasks.infra:check_storage"),
           A("Service availability and response times", "tasks.infra:probe_http_endpoint", "vvops.reviews.monthly:availability",
             PROM_WATCHER),
           A("Error rates and patterns", "tasks.infra:probe_http_endpoint", "tasks.chain:check_tx_error_rate"),
           A("Traffic patterns", "tasks.security:analyse_access_logs_task"),
           A("Database performance", "tasks.infra:check_database")),
    *group(_p(IO, "Monitoring Systems", "Metric Collection", "Protocol Metrics"),
           A("Transaction volume and throughput", "tasks.chain:check_onchain_activity", PROM_WATCHER),
           A("Smart contract interactions", "vvops.chain.activity:vault_activity", PROM_WATCHER),
           A("Gas usage patterns", PROTO_ASSESS, PROM_WATCHER),
           A("Function call frequency", "vvops.chain.activity:vault_activity", PROM_WATCHER),
           A("Error rates by contract and function", "tasks.chain:check_tx_error_rate", PROM_WATCHER)),
    *group(_p(IO, "Monitoring Systems", "Metric Collection", "Business Metrics"),
           A("User activity levels", "vvops.chain.activity:vault_activity"),
           A("Asset movements", "vvops.chain.activity:vault_activity", RULES, PROM_WATCHER),
           A("Liquidity metrics", "tasks.chain:read_contract_state", PROM_WATCHER),
           A("Protocol revenue", "vvops.chain.activity:vault_activity"),
           M("User growth indicators", "User growth of the month analysed", on="monthly", owner="data_analyst")),
    *group(_p(IO, "Monitoring Systems", "Alerting Framework", "Alert Configuration"),
           S("Threshold setting and refinement", "vvops.config.schema:Threshold", "vvops.config.loader:check_config",
             on="monthly", owner="sre", check="Noisy or silent thresholds in checks.yaml/watcher.yaml refined"),
           A("Alert routing and escalation", "vvops.alerting.routing:route_alert", "vvops.alerting.escalation:escalation_timeline",
             ALERT_SWEEP),
           A("Alert prioritization", "vvops.alerting.rules:evaluate_outcomes"),
           A("Notification channel management", "vvops.notify.delivery:SlackDelivery", "vvops.config.schema:SlackChannels"),
           A("Alert correlation implementation", "vvops.alerting.grouping:plan_group", "vvops.alerting.silences:inhibited_by")),
    *group(_p(IO, "Monitoring Systems", "Alerting Framework", "Alert Response"),
           A("Initial triage procedures", CLASSIFY, INCIDENT, "vvops.config.runbooks_schema:RunbooksFile",
             "vvops.notify.messages:runbook_line"),
           S("Investigation workflows", INCIDENT, EVIDENCE, on="incident"),
           A("Resolution tracking", "tasks.alerts:acknowledge_alert", "vvops.alerting.service:AlertService"),
           A("Post-resolution documentation", IREPORT),
           S("False positive management", "vvops.alerting.silences:mute_reason", "vvops.alerting.silence_store:active_stored_silences", on="weekly", owner="sre",
             check="False positives of the week silenced or their rules fixed")),
    *group(_p(IO, "Monitoring Systems", "Dashboard Management", "Dashboard Development"),
           A("Use case-specific dashboard creation", GRAFANA, "vvops.observability.dashboards:build_dashboard"),
           A("Metric visualization design", GRAFANA, PROM_STORE, PROM_WATCHER, "vvops.reviews.plots:line_plot"),
           A("Drill-down capability implementation", GRAFANA, PROM_STORE, "vvops.observability.prefect_collector:PrefectRunsCollector"),
           A("Alert integration", PROM_STORE, "vvops.observability.alertmanager:AlertmanagerPusher",
             "vvops.observability.alertmanager:WebhookReceiver"),
           M("User-friendly interface design", "Report readability feedback collected"),
           on="monthly", owner="data_analyst"),
    *group(_p(IO, "Monitoring Systems", "Dashboard Management", "Dashboard Maintenance"),
           A("Regular data accuracy verification", "tasks.maintenance:check_data_integrity", "tasks.data_quality:validate_database"),
           M("Visualization optimization", "Report charts reviewed"),
           M("New metric incorporation", "New metrics added to the reports"),
           M("Obsolete metric removal", "Obsolete metrics removed from reports/capacity.yaml"),
           M("Performance optimization", "Report generation time reviewed"),
           on="monthly", owner="data_analyst"),

    # ================================================================ Incident Management
    *group(_p(IM, "Incident Classification", "Severity Levels"),
           *(A(s, CLASSIFY, "vvops.config.schema:SeverityMatrix") for s in
             ("P0 (Critical)", "P1 (High)", "P2 (Medium)", "P3 (Low)"))),
    *group(_p(IM, "Incident Classification", "Incident Types"),
           *(A(t, CLASSIFY, "vvops.config.schema:IncidentTypes") for t in
             ("Technical", "Security", "Operational", "External"))),
    *group(_p(IM, "Incident Response Workflow", "Detection and Triage", "Initial Detection"),
           A("Automated monitoring alerts", WATCHER, "tasks.alerts:raise_alerts_for_outcomes"),
           M("User-reported issues", "User reports of the day triaged; incidents opened where needed", owner="support",
             refs=[INCIDENT]),
           M("Team member observations", "Observations raised in standup opened as incidents where needed",
             refs=[INCIDENT]),
           M("Partner notifications", "Partner notifications of the day triaged", owner="support", refs=[INCIDENT]),
           A("Security monitoring systems", WATCHER, SECP),
           on="daily", owner="ops_lead"),
    *group(_p(IM, "Incident Response Workflow", "Detection and Triage", "Initial Assessment"),
           A("Severity determination", CLASSIFY),
           S("Impact scope identification", INCIDENT, EVIDENCE, on="incident"),
           A("Initial categorization", CLASSIFY),
           A("Priority assignment", CLASSIFY),
           A("Response team mobilization", PAGE)),
    *group(_p(IM, "Incident Response Workflow", "Detection and Triage", "Immediate Actions"),
           S("Containment measures", PAUSE, FAILOVER, INCIDENT, on="approval:incident_containment"),
           A("Evidence preservation", EVIDENCE),
           A("Initial communication", INCIDENT, "vvops.notify.messages:incident_opened"),
           S("Resource allocation", PAGE, on="incident"),
           S("Investigation initiation", INCIDENT, on="incident")),
    *group(_p(IM, "Incident Response Workflow", "Investigation and Resolution", "Root Cause Analysis"),
           S("Detailed investigation", EVIDENCE, on="incident"),
           S("Log analysis", EVIDENCE, "vvops.chain.logs:fetch_logs", on="incident"),
           A("System state examination", EVIDENCE, "tasks.chain:read_contract_state"),
           S("Pattern identification", EVIDENCE, on="incident"),
           S("Contributing factor assessment", IREPORT, on="incident")),
    *group(_p(IM, "Incident Response Workflow", "Investigation and Resolution", "Resolution Planning"),
           M("Solution development", "For each open incident: fix agreed in the incident thread"),
           M("Implementation planning", "For each open incident: fix routed through parameter-change/upgrade-rollout"),
           M("Testing strategy", "For each open incident: how the fix is tested written down"),
           A("Rollback preparation", PARAM, UPGRADE),
           A("Communication planning", REMINDERS, "vvops.procedures.incidents:due_reminder", "flows.public_statement:public_statement"),
           on="daily", owner="ops_lead"),
    *group(_p(IM, "Incident Response Workflow", "Investigation and Resolution", "Resolution Implementation"),
           A("Controlled solution deployment", PARAM, UPGRADE, UNPAUSE),
           A("Real-time monitoring", WATCHER),
           A("Effectiveness verification", RECOVERY),
           M("Adjustment as needed", "For each open incident: adjustments after the fix recorded", on="daily",
             owner="ops_lead"),
           A("Status communication", REMINDERS, "vvops.notify.messages:incident_updated")),
    *group(_p(IM, "Incident Response Workflow", "Post-Incident Activities", "Recovery Verification"),
           A("Full functionality confirmation", RECOVERY),
           A("Performance verification", RECOVERY),
           S("Security posture confirmation", SECP, on="incident"),
           S("Data integrity validation", "tasks.maintenance:check_data_integrity", on="incident"),
           S("User impact assessment", IREPORT, on="incident")),
    *group(_p(IM, "Incident Response Workflow", "Post-Incident Activities", "Incident Documentation"),
           A("Comprehensive incident timeline", TIMELINE, "flows.emergency_pause:incident_timeline_event"),
           S("Root cause documentation", IREPORT, on="incident"),
           A("Resolution steps recording", TIMELINE),
           S("Impact assessment", IREPORT, on="incident"),
           S("Lessons learned identification", IREPORT, on="incident")),
    *group(_p(IM, "Incident Response Workflow", "Post-Incident Activities", "Process Improvement"),
           S("Preventive measure identification", "tasks.action_items:record_action_items",
             "tasks.action_items:sweep_action_item_reminders",
             "vvops.reviews.weekly:open_action_items",
             check="Preventive action items of this week's incidents recorded with owners and due dates"),
           M("Detection improvement recommendations", "Detection gaps from this week's incidents turned into rules",
             owner="sre"),
           M("Response process enhancement", "Response-process changes from this week's incidents filed"),
           S("Documentation updates", "vvops.config.runbooks_schema:RunbooksFile",
             check="docs/runbooks.md updated after this week's incidents"),
           M("Training needs identification", "Training needs from this week's incidents recorded"),
           on="weekly", owner="ops_lead"),
    *group(_p(IM, "Emergency Response Plans", "Security Incidents", "Security Breach Response"),
           S("Immediate containment actions", PAUSE, INCIDENT, on="approval:incident_containment"),
           A("Evidence preservation procedures", EVIDENCE),
           S("Forensic investigation process", EVIDENCE, on="incident"),
           A("Stakeholder notification protocol", PAGE, NOTIFY),
           S("Recovery and remediation steps", IREPORT, on="incident")),
    *group(_p(IM, "Emergency Response Plans", "Security Incidents", "Vulnerability Management"),
           A("Critical vulnerability assessment process", "tasks.security:review_vulnerability_reports"),
           S("Emergency patch deployment procedure", UPGRADE, on="approval:upgrade_rollout"),
           S("Temporary mitigation implementation", PAUSE, PARAM, on="approval:emergency_pause"),
           A("Verification testing protocol", "tasks.upgrades:rehearse_upgrade", "tasks.upgrades:checkpoint"),
           M("Disclosure management process", "Disclosure process (researchers, bounty, public notice) current",
             on="monthly", owner="security_ops")),
    *group(_p(IM, "Emergency Response Plans", "Smart Contract Incidents", "Contract Vulnerability Response"),
           A("Circuit breaker activation procedure", PAUSE, GUARDIAN),
           A("Function pause mechanism", GUARDIAN),
           S("Emergency parameter adjustment", PARAM, on="approval:parameter_change"),
           S("Migration path implementation", UPGRADE, on="approval:upgrade_rollout"),
           A("Communication protocol", INCIDENT, "vvops.notify.messages:incident_opened")),
    *group(_p(IM, "Emergency Response Plans", "Smart Contract Incidents", "Financial Risk Mitigation"),
           A("Asset protection procedures", PAUSE, "vvops.procedures.incidents:needs_guardian_pause"),
           M("Emergency fund access process", "Emergency fund access (multisig signers reachable) confirmed",
             on="monthly", owner="ops_lead", refs=["vvops.safe.proposals:propose"]),
           A("Loss limitation strategies", UNPAUSE, "vvops.procedures.incidents:needs_guardian_pause"),
           S("Recovery planning", IREPORT, UNPAUSE, on="incident"),
           S("Financial impact assessment", INCIDENT, "tasks.chain:read_contract_state", on="incident")),
    *group(_p(IM, "Emergency Response Plans", "Infrastructure Failures", "Major Outage Response"),
           A("Service restoration priorities", "vvops.procedures.incidents:failover_order"),
           A("Failover activation procedures", FAILOVER),
           A("Alternative service paths", FAILOVER),
           A("Resource escalation process", "vvops.alerting.escalation:escalation_timeline", ALERT_SWEEP),
           M("External dependency management", "Provider tickets of open outages followed up", on="daily", owner="sre")),
    *group(_p(IM, "Emergency Response Plans", "Infrastructure Failures", "Data Integrity Issues"),
           A("Corruption assessment procedures", "tasks.maintenance:check_data_integrity", "vvops.store.audit:verify_audit_chain"),
           A("Data recovery process", "vvops.resilience.backup:restore_store", DRILL),
           A("Integrity verification steps", "vvops.resilience.backup:table_fingerprints", "vvops.store.audit:verify_audit_chain"),
           M("Reconciliation procedures", "Store vs chain reconciliation procedure current"),
           M("Historical data reconstruction", "Procedure to rebuild history from backups and chain current",
             refs=["vvops.resilience.backup:restore_store"]),
           on="monthly", owner="sre"),

    # ================================================================ Communication Protocols
    *group(_p(CP, "Internal Communication", "Team Communication"),
           A("Daily operational updates", DAILY, "vvops.notify.messages:summary"),
           A("Incident notification procedures", PAGE, "vvops.notify.messages:incident_opened"),
           A("Status reporting requirements", REMINDERS),
           A("Escalation pathways", "vvops.alerting.escalation:escalation_timeline", ALERT_SWEEP, APPROVAL_SWEEP),
           S("Knowledge sharing protocols", "vvops.notify.messages:runbook_line", IREPORT, on="weekly",
             owner="ops_lead", check="Knowledge shared this week: runbook links on alerts, post-incident reports read")),
    *group(_p(CP, "Internal Communication", "Cross-functional Communication"),
           M("Development team coordination", "Development team informed of ops-impacting issues"),
           M("Governance team interaction", "Governance team informed of pending changes", owner="protocol_specialist"),
           M("Treasury management coordination", "Treasury informed of fund movements/risks"),
           A("Security team integration", "vvops.alerting.routing:route_alert", PAGE),
           S("Support team information flow", STATEMENT, ANNOUNCE, "tasks.approvals:request_approval",
             owner="support", check="Support briefed on incidents and changes (every public statement and "
                                    "announcement waits for support's approval)"),
           on="weekly", owner="ops_lead"),
    *group(_p(CP, "Internal Communication", "Management Reporting"),
           A("Regular status reporting", WEEKLY, MONTHLY),
           A("Performance metric communication", "vvops.reviews.weekly:slack_summary_weekly",
             "vvops.reviews.monthly:slack_summary_monthly"),
           A("Risk and issue escalation", ALERT_SWEEP, APPROVAL_SWEEP),
           S("Resource requirement notification", CAPACITY, on="weekly", owner="ops_lead",
             check="Capacity needs from the weekly plan sent to management"),
           M("Strategic alignment maintenance", "Ops priorities aligned with management", on="monthly", owner="ops_lead")),
    *group(_p(CP, "External Communication", "User Communications"),
           A("Service status notifications", "flows.ops_sweep:ops_sweep", "tasks.status_page:publish_status_page",
             "vvops.status_page:build_status_page"),
           S("Planned maintenance announcements", ANNOUNCE, ANNOUNCE_SEND, on="approval:public_statement",
             check="Maintenance windows of next week announced (announcement, topic maintenance)"),
           S("Incident communications", STATEMENT, STATEMENT_SEND, "tasks.status_page:publish_status_page",
             on="approval:public_statement"),
           S("Feature and upgrade announcements", ANNOUNCE, ANNOUNCE_SEND, on="approval:public_statement",
             check="Upgrades/features of next week announced (announcement, topic upgrade)"),
           S("Educational content distribution", ANNOUNCE, ANNOUNCE_SEND, on="approval:public_statement",
             check="Educational content distributed (announcement, topic education)"),
           owner="support"),
    *group(_p(CP, "External Communication", "Partner Communications"),
           S("Integration support communications", ANNOUNCE, ANNOUNCE_SEND, on="approval:public_statement",
             check="Integration notices sent to integrators (announcement, topic integration)"),
           S("API changes and deprecations", ANNOUNCE, ANNOUNCE_SEND, on="approval:public_statement",
             check="API changes/deprecations announced to partners (announcement, topic api_change)"),
           M("Collaborative problem resolution", "Joint issues with partners tracked", on="weekly"),
           S("Roadmap sharing", ANNOUNCE, ANNOUNCE_SEND, on="approval:public_statement", owner="ops_lead",
             check="Roadmap shared with partners (announcement, topic roadmap)"),
           S("Technical specification distribution", ANNOUNCE, ANNOUNCE_SEND, on="approval:public_statement",
             owner="protocol_specialist",
             check="Specs of upcoming changes sent to partners (announcement, topic specification)"),
           owner="support"),
    *group(_p(CP, "External Communication", "Community Engagement"),
           S("Transparency reporting", "vvops.status_page:build_status_page", STATEMENT, MONTHLY, on="monthly",
             owner="ops_lead", check="Monthly transparency report published (from the monthly review; the status "
                                     "page publishes 90-day uptime per component and every incident with its "
                                     "approved post-incident summary)"),
           M("Technical discussion participation", "Ops answered technical community discussions", on="weekly",
             owner="protocol_specialist"),
           M("Educational content creation", "Educational content written", on="monthly"),
           M("Feedback collection and response", "Community feedback collected and answered", on="weekly"),
           S("Regular community updates", ANNOUNCE, ANNOUNCE_SEND, on="approval:public_statement", owner="ops_lead",
             check="Community update posted (announcement, topic community_update, to the community webhooks)"),
           owner="support"),
    *group(_p(CP, "Crisis Communication", "Incident Notification"),
           A("Initial notification templates and channels", "vvops.notify.messages:incident_opened", "vvops.config.schema:SlackChannels"),
           A("Ongoing update procedures", REMINDERS, "vvops.notify.messages:incident_updated"),
           A("Resolution announcement process", "vvops.notify.messages:incident_resolved"),
           S("Post-incident communication", STATEMENT, STATEMENT_SEND, IREPORT, on="approval:public_statement",
             owner="support"),
           S("Stakeholder-specific messaging", STATEMENT, "vvops.communications.statements:recipients",
             on="approval:public_statement", owner="support")),
    *group(_p(CP, "Crisis Communication", "Escalation Communication"),
           M("Media response protocol", "Media response protocol current (spokesperson, holding statements)"),
           S("Legal and regulatory notification procedures", STATEMENT, STATEMENT_SEND,
             "vvops.communications.statements:recipients", on="approval:public_statement",
             check="Regulator contact lists (kind regulator) and their severities current; legal reviewed the wording"),
           M("Executive communication templates", "Executive communication templates current"),
           S("Partner notification process", STATEMENT, STATEMENT_SEND, on="approval:public_statement",
             owner="support"),
           A("Internal crisis communication", INCIDENT, PAGE, NOTIFY),
           on="monthly", owner="ops_lead"),

    # ================================================================ Operational Resilience
    *group(_p(OR, "Business Continuity", "Continuity Planning"),
           M("Critical function identification", "Critical functions list reviewed"),
           M("Minimum viable operations definition", "Minimum viable operations definition reviewed"),
           S("Recovery time objectives", DRILL, "vvops.reviews.compliance:drills_control",
             check="RTO/RPO targets reviewed against the latest drill's measurements"),
           M("Alternative operating procedures", "Alternative operating procedures reviewed"),
           M("Resource requirements documentation", "Continuity resource requirements documented"),
           on="monthly", owner="ops_lead"),
    *group(_p(OR, "Business Continuity", "Disruption Response"),
           A("Response team activation", PAGE, INCIDENT),
           M("Alternative process implementation", "Alternative processes used during disruptions this month reviewed"),
           A("Progress tracking and reporting", TIMELINE, REMINDERS),
           M("Resource allocation", "People/resources for disruptions of the month reviewed"),
           A("Stakeholder communication", NOTIFY, "vvops.notify.messages:incident_updated"),
           on="monthly", owner="ops_lead"),
    *group(_p(OR, "Disaster Recovery", "Recovery Planning"),
           S("Recovery procedure documentation", DRILL, PUBLISH, check="DR runbook matches the latest drill report"),
           M("System restoration prioritization", "Restoration order of systems reviewed"),
           A("Data recovery procedures", "vvops.resilience.backup:backup_store", "vvops.resilience.backup:restore_store"),
           S("Alternative infrastructure preparation", FAILOVER, check="Backup RPC URLs and standby infrastructure verified"),
           M("External dependency management", "External providers' DR commitments reviewed"),
           on="monthly", owner="sre"),
    *group(_p(OR, "Disaster Recovery", "Recovery Testing"),
           A("Regular recovery scenario testing", DRILL, "vvops.reviews.compliance:drills_control"),
           S("Tabletop exercises", "flows.dr_drill:record_drill", "vvops.reviews.compliance:drills_control",
             check="Tabletop exercise due/held (recorded as a drill)", owner="ops_lead"),
           A("Recovery time measurement", DRILL),
           M("Procedure refinement", "DR procedure refined after the last drill"),
           M("Team capability development", "Team members who have not run a drill yet scheduled", owner="ops_lead"),
           on="monthly", owner="sre"),
    *group(_p(OR, "Capacity Management", "Resource Planning"),
           A("Usage forecasting", PLAN, CAPACITY),
           A("Growth trend analysis", "vvops.forecast:fit_trend"),
           A("Capacity requirement calculation", "vvops.forecast:limit_crossing", "vvops.forecast:days_to_limit"),
           M("Scaling strategy development", "Scaling strategy reviewed against the capacity plan"),
           M("Resource procurement planning", "Procurement for the capacity plan scheduled", owner="ops_lead"),
           on="monthly", owner="sre"),
    *group(_p(OR, "Capacity Management", "Scalability Implementation"),
           M("Horizontal scaling procedures", "Horizontal scaling procedure current"),
           S("Vertical scaling assessment", CAPACITY, on="weekly", check="Components near their limit assessed for vertical scaling"),
           M("Load distribution optimization", "Load distribution reviewed"),
           S("Database scaling management", "tasks.infra:check_database", CAPACITY, check="Store growth vs limits reviewed"),
           M("Network capacity enhancement", "Network capacity reviewed"),
           on="monthly", owner="sre"),

    # ================================================================ Continuous Improvement
    *group(_p(CI, "Operations Metrics", "Performance Indicators"),
           A("System availability", "vvops.reviews.monthly:availability"),
           A("Response time metrics", "vvops.reviews.monthly:latency_p95", "vvops.procedures.incidents:mtta_minutes"),
           A("Error rates", "tasks.chain:check_tx_error_rate", "vvops.reviews.weekly:pass_rate_by_area"),
           A("Resolution time", "vvops.procedures.incidents:mttr_minutes"),
           M("User satisfaction", "User satisfaction signal collected (support tickets, survey)", on="monthly",
             owner="support")),
    *group(_p(CI, "Operations Metrics", "Efficiency Metrics"),
           A("Resource utilization", "tasks.infra:check_host", PLAN),
           A("Automation level", "vvops.coverage.matrix:mode_totals"),
           S("Cost per transaction", PROTO_ASSESS, check="Cost per vault transaction computed from gas per function"),
           M("Team productivity", "Team throughput of the month reviewed", owner="ops_lead"),
           A("Process cycle time", "vvops.reviews.weekly:approvals_overview", "vvops.reviews.weekly:incident_stats"),
           on="monthly", owner="data_analyst"),
    *group(_p(CI, "Operations Metrics", "Quality Metrics"),
           S("Defect rates", "tasks.reviews:failed_or_late_flow_runs",
             check="Defects found in ops tooling this month counted (the weekly reviews' failed and late runs)"),
           S("Regression frequency", "vvops.reviews.process_improvement:repeat_incidents",
             check="Regressions of the month counted (the monthly review's repeat incidents by cause)"),
           M("Test coverage", "Test coverage of the ops code reviewed", owner="sre"),
           S("Documentation accuracy", COVERAGE, check="Coverage matrix regenerated and matches the playbook"),
           S("Training effectiveness", "flows.dr_drill:record_drill", "vvops.reviews.compliance:drills_control",
             check="Training effectiveness assessed from the recorded drill outcomes (tabletop and restore drills)"),
           on="monthly", owner="ops_lead"),
    *group(_p(CI, "Process Improvement", "Review Mechanisms"),
           S("Regular process assessments", "vvops.reviews.process_improvement:process_improvement",
             "tasks.reviews:playbook_coverage",
             check="Process assessment of the month held on the monthly review's process-improvement and coverage "
                   "sections"),
           S("Post-incident reviews", IREPORT, "vvops.reviews.compliance:post_incident_reports_control",
             "vvops.reviews.process_improvement:action_item_follow_through",
             check="Post-incident reviews held within the due days"),
           M("User feedback analysis", "User feedback of the month analysed", owner="support"),
           M("Team retrospectives", "Team retrospective held"),
           M("External best practice research", "External best practices reviewed"),
           on="monthly", owner="ops_lead"),
    *group(_p(CI, "Process Improvement", "Improvement Implementation"),
           M("Process change management", "Process changes of the month went through review"),
           M("Pilot implementation approach", "Pilots running and their status reviewed"),
           S("Results measurement", "vvops.reviews.monthly:month_over_month",
             "vvops.reviews.process_improvement:mtta_mttr_trend", "vvops.reviews.process_improvement:repeat_incidents",
             check="Effect of this month's changes measured (MTTA/MTTR trend, repeat causes)"),
           M("Standardization of successful changes", "Successful pilots standardised"),
           S("Documentation updates", "tasks.reviews:playbook_coverage", "vvops.config.loader:check_config",
             check="Process docs updated for the month's changes (the monthly review flags a stale coverage matrix; "
                   "config check flags runbook links without a section)"),
           on="monthly", owner="ops_lead"),
    *group(_p(CI, "Knowledge Management", "Documentation Development"),
           S("Procedure documentation", MATRIX, COVERAGE, check="docs/playbook-coverage.md reviewed for the month's changes"),
           M("System documentation", "System docs (docs/, README) current", owner="sre"),
           S("Troubleshooting guides", "vvops.config.runbooks_schema:RunbooksFile", "vvops.config.loader:check_config",
             check="Runbook sections (docs/runbooks.md) current for the month's alerts and checks", owner="sre"),
           S("Decision frameworks", CLASSIFY, "tasks.approvals:request_approval",
             check="Decision frameworks the flows enforce reviewed (oncall.yaml severity matrix, procedures.yaml "
                   "approval policies)"),
           M("Best practice collections", "Best-practice collection updated"),
           on="monthly", owner="ops_lead"),
    *group(_p(CI, "Knowledge Management", "Training Program"),
           M("Onboarding curriculum", "Onboarding curriculum current"),
           M("Ongoing skill development", "Skill-development plan per person reviewed"),
           M("Cross-training initiatives", "Cross-training pairs of the month recorded"),
           M("Certification programs", "Certifications progress reviewed"),
           M("Knowledge verification", "Knowledge checks (quiz/drill) held"),
           on="monthly", owner="ops_lead"),
])


# ---- checks --------------------------------------------------------------------------------------------------

def entry_problems(e: Entry) -> list[str]:
    """What is wrong with one entry on its own (mode, references, checklist fields)."""
    where = f"{e.path} / {e.item}"
    out = []
    if e.mode not in MODES:
        out.append(f"{where}: unknown mode {e.mode!r}")
    for ref in e.implemented_by:
        if ":" not in ref:
            out.append(f"{where}: {ref!r} is not module:attribute")
    if e.mode in ("automated", "assisted") and not e.implemented_by:
        out.append(f"{where}: {e.mode} needs implemented_by")
    if e.mode == "assisted":
        if not e.on or not (e.on in CADENCES or e.on == "incident" or e.on.startswith("approval:")):
            out.append(f"{where}: assisted needs on = daily|weekly|monthly|incident|approval:<policy>, got {e.on!r}")
    if e.mode == "manual" and e.on not in CADENCES:
        out.append(f"{where}: manual needs on = daily|weekly|monthly, got {e.on!r}")
    if e.cadence and e.owner_role not in ROLES:
        out.append(f"{where}: checklist item needs owner_role in {ROLES}, got {e.owner_role!r}")
    return out


def resolve_ref(ref: str) -> object:
    """Import `module:attribute` (attribute may be dotted); raises on failure."""
    module, _, attr = ref.partition(":")
    obj: object = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def unresolved_refs(entries: Iterable[Entry] | None = None) -> list[str]:
    """References that do not import, as 'ref: error' (each distinct ref once)."""
    bad, seen = [], set()
    for e in REGISTRY if entries is None else entries:
        for ref in e.implemented_by:
            if ref in seen:
                continue
            seen.add(ref)
            try:
                resolve_ref(ref)
            except Exception as exc:  # noqa: BLE001 - report every kind of import failure
                bad.append(f"{ref}: {type(exc).__name__}: {exc}")
    return bad


@dataclass
class CoverageProblems:
    missing: list[PlaybookItem] = field(default_factory=list)   # playbook items without an entry
    stale: list[Entry] = field(default_factory=list)            # entries naming no playbook item
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.missing or self.stale or self.duplicates or self.invalid)

    def lines(self) -> list[str]:
        return ([f"missing: {i.heading_path} / {i.text} (playbook line {i.line})" for i in self.missing]
                + [f"stale: {e.path} / {e.item}" for e in self.stale]
                + [f"duplicate: {p} / {t}" for p, t in self.duplicates]
                + [f"invalid: {m}" for m in self.invalid])


def coverage_problems(items: Iterable[PlaybookItem], entries: Iterable[Entry] | None = None) -> CoverageProblems:
    """Compare the playbook's items with the registry (imports are checked separately: `unresolved_refs`)."""
    entries = list(REGISTRY if entries is None else entries)
    items = list(items)
    result = CoverageProblems()
    seen: set[tuple[str, str]] = set()
    for e in entries:
        if e.key in seen:
            result.duplicates.append(e.key)
        seen.add(e.key)
        result.invalid += entry_problems(e)
    item_keys = {i.key for i in items}
    result.missing = [i for i in items if i.key not in seen]
    result.stale = [e for e in entries if e.key not in item_keys]
    return result


def by_key(entries: Iterable[Entry] | None = None) -> dict[tuple[str, str], Entry]:
    return {e.key: e for e in (REGISTRY if entries is None else entries)}
