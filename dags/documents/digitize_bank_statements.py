"""Scanned bank statements -> Textract tables -> business rules -> A2I human review -> Excel workbooks."""

from __future__ import annotations

from airflow.providers.amazon.aws.operators.s3 import S3CreateBucketOperator
from airflow.sdk import Param, dag, task, task_group
from aws_ml.operators.textract import (
    A2ICreateFlowDefinitionOperator,
    A2IStartHumanLoopOperator,
    TextractGetDocumentAnalysisOperator,
    TextractStartDocumentAnalysisOperator,
)

from include.connections import AWS_CONN_ID, dynamodb_client, s3_client
from include.documents.airflow_config import (
    REVIEW_POOL,
    REVIEW_TEMPLATE,
    TEXTRACT_POOL,
    tracking_callbacks,
)

DOC_MD = """
### digitize_bank_statements

Drop scans (PDF, PNG, JPEG, multi-page TIFF) under `s3://<bucket>/acquire/<priority>/` (`p0` first, then `p1`
...; no priority folder: last). Each run processes the batch, one mapped task group per document in priority
order; a document that fails is marked failed in its tracking item and never blocks the others, and a rerun
skips the documents already catalogued.

Per document: **convert** (one PDF + page images), **extract** (Textract `StartDocumentAnalysis` with TABLES,
FORMS optional, deferrable; the `textract_jobs` pool caps jobs in flight; throttling retried with backoff; all
result pages fetched with NextToken), **operate** (blocks -> tables, table type, header normalization, column
validation, balance arithmetic; every failing cell flagged with its reason), **augment** (below
`confidence_threshold` or failing a rule: an A2I human loop on a flow definition this DAG creates; the
`human_loops` pool caps loops open at once; the corrections are merged back and the rules rerun), **catalog** (an
Excel workbook under `s3://<bucket>/catalog/`).

Tracking: DynamoDB table `tracking_table` (stage, state, timestamps, error per document); the `status` task lists
every document, as does `python -m include.documents.status`.
"""


@dag(
    dag_id="digitize_bank_statements",
    schedule=None,
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    tags=["documents", "textract", "a2i"],
    doc_md=DOC_MD,
    default_args={"owner": "documents", "retries": 0},
    params={
        "bucket": Param("industrial-ml-documents", type="string"),
        "tracking_table": Param("document-tracking", type="string"),
        "feature_types": Param(["TABLES"], type="array", description="TABLES, plus FORMS if wanted"),
        "confidence_threshold": Param(90.0, type="number", minimum=0, maximum=100),
        "max_documents": Param(0, type="integer", minimum=0, description="0 = every pending document"),
        "review": Param(True, type="boolean", description="send low-confidence/rule-failing documents to A2I"),
        "flow_definition_name": Param("statement-review", type="string"),
        "human_task_ui_name": Param("statement-review-ui", type="string"),
        "workteam_arn": Param(
            "arn:aws:sagemaker:us-east-1:000000000000:workteam/private-crowd/statement-reviewers", type="string"
        ),
        "role_arn": Param("arn:aws:iam::000000000000:role/a2i-statement-review", type="string"),
        "review_poke_seconds": Param(10, type="integer", minimum=1),
        "sample_statements": Param(
            0, type="integer", minimum=0, maximum=100, description="first drop N generated sample scans in acquire/"
        ),
    },
)
def digitize_bank_statements():
    create_bucket = S3CreateBucketOperator(
        task_id="create_bucket", bucket_name="{{ params.bucket }}", aws_conn_id=AWS_CONN_ID
    )

    @task
    def samples(params=None) -> list[str]:
        from include.documents.samples import seed_samples

        count = params["sample_statements"]
        return seed_samples(s3_client(), params["bucket"], count) if count else []

    @task
    def acquire(params=None) -> list[dict]:
        from include.documents import pipeline

        s3 = s3_client()
        return pipeline.acquire(params, s3, _ddb())

    flow = A2ICreateFlowDefinitionOperator(
        task_id="create_flow_definition",
        flow_definition_name="{{ params.flow_definition_name }}",
        human_task_ui_name="{{ params.human_task_ui_name }}",
        ui_template_file=REVIEW_TEMPLATE,
        output_s3_uri="s3://{{ params.bucket }}/review-output",
        role_arn="{{ params.role_arn }}",
        workteam_arn="{{ params.workteam_arn }}",
        aws_conn_id=AWS_CONN_ID,
    )

    @task_group
    def document(doc: dict):
        @task(multiple_outputs=True)
        def convert(doc: dict, params=None) -> dict:
            from airflow.providers.common.compat.sdk import AirflowFailException

            from include.documents import pipeline

            try:
                return pipeline.convert_document(params, doc, s3_client(), ddb=_ddb())
            except pipeline.DocumentError as err:  # bad input: retrying cannot help
                raise AirflowFailException(str(err)) from err

        converted = convert(doc)
        job = TextractStartDocumentAnalysisOperator(
            task_id="start_analysis",
            document_bucket="{{ params.bucket }}",
            document_key=converted["pdf_key"],
            feature_types="{{ params.feature_types }}",
            deferrable=True,
            waiter_delay=5,
            pool=TEXTRACT_POOL,
            retries=2,
            aws_conn_id=AWS_CONN_ID,
            **tracking_callbacks("extract"),
        )
        analysis = TextractGetDocumentAnalysisOperator(
            task_id="get_analysis",
            job_id=job.output,
            output_bucket="{{ params.bucket }}",
            output_key="work/{{ ti.xcom_pull(task_ids='acquire')[ti.map_index]['document_id'] }}/textract.json",
            aws_conn_id=AWS_CONN_ID,
            **tracking_callbacks("extract"),
        )

        @task(multiple_outputs=True)
        def operate(doc: dict, analysis: dict, params=None) -> dict:
            from include.documents import pipeline

            s3 = s3_client()
            return pipeline.reshape_and_operate(params, doc, analysis["uri"], s3, ddb=_ddb())

        checked = operate(doc, analysis.output)

        # No branching inside the mapped group: Airflow evaluates a trigger rule such as none_failed_min_one_success
        # across every map index before expanding, so one failed document would fail the others' catalog tasks.
        # A document that needs no review gets an empty loop name, and the review steps pass it through.
        @task(multiple_outputs=True)
        def review_input(doc: dict, converted: dict, checked: dict, params=None) -> dict:
            from include.documents import pipeline

            if not (params["review"] and checked["needs_review"]):
                return {"name": "", "content": {}}
            from include.documents import tracking

            s3 = s3_client()
            name = pipeline.loop_name(doc, checked["tables_uri"], s3)
            content = pipeline.review_input(params, doc, converted, checked["tables_uri"], s3)
            # Waiting for a person: the tracking item says so, and names the loop to look for.
            tracking.update(
                _ddb(), params["tracking_table"], doc["document_id"], "augment", "running", outputs={"human_loop": name}
            )
            return {"name": name, "content": content}

        review = review_input(doc, converted, checked)
        loop = A2IStartHumanLoopOperator(
            task_id="human_review",
            human_loop_name=review["name"],
            flow_definition_arn=flow.output,
            input_content=review["content"],
            deferrable=True,
            waiter_delay="{{ params.review_poke_seconds }}",
            pool=REVIEW_POOL,
            aws_conn_id=AWS_CONN_ID,
        )

        @task
        def merge_review(doc: dict, checked: dict, loop: dict | None, params=None) -> dict:
            from aws_ml.hooks.a2i import A2IRuntimeHook

            from include.documents import pipeline, tracking

            if not loop:
                tracking.update(_ddb(), params["tracking_table"], doc["document_id"], "augment", "skipped")
                return {"tables_uri": checked["tables_uri"]}
            s3 = s3_client()
            output = A2IRuntimeHook(aws_conn_id=AWS_CONN_ID).get_output(loop["name"], s3)
            return pipeline.merge_review(params, doc, checked["tables_uri"], output, s3, ddb=_ddb())

        merged = merge_review(doc, checked, loop.output)

        @task
        def catalog(doc: dict, merged: dict, params=None, dag_run=None) -> dict:
            from include.documents import pipeline

            s3 = s3_client()
            when = dag_run.logical_date or dag_run.run_after
            return pipeline.catalog(params, doc, merged["tables_uri"], s3, when.isoformat(), ddb=_ddb())

        return catalog(doc, merged)

    @task(trigger_rule="all_done")
    def status(params=None) -> list[dict]:
        from include.documents import pipeline

        rows = pipeline.status(_ddb(), params["tracking_table"])
        for row in rows:
            print(f"{row['priority']!s:>5} {row['stage']:8} {row['state']:8} {row['key']}  {row.get('error') or ''}")
        failed = [r for r in rows if r["state"] == "failed"]
        if failed:  # the others are catalogued; the run still says that something needs a look
            from airflow.providers.common.compat.sdk import AirflowFailException

            raise AirflowFailException("failed documents: " + "; ".join(f"{r['key']}: {r['error']}" for r in failed))
        return rows

    documents = acquire()
    create_bucket >> samples() >> documents
    create_bucket >> flow
    processed = document.expand(doc=documents)
    flow >> processed
    processed >> status()

    @task
    def all_catalogued(processed: list[dict]) -> int:
        # A leaf with the default trigger rule: the run fails when any document did (status runs regardless).
        return len(list(processed))

    all_catalogued(processed)


def _ddb():
    return dynamodb_client(AWS_CONN_ID)


digitize_bank_statements()
