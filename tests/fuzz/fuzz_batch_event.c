/*
 * fuzz_batch_event.c — the EventBridge "Batch Job State Change" reader
 * (routes/batch_event.c) on arbitrary bytes, read as POST /events/batch
 * reads its body (a JSON object, duplicates refused). Checked besides
 * crashes and leaks: GW_OK with no problem listed and the required fields
 * set, or GW_EINVAL with at least one problem.
 */
#include <jansson.h>

#include "common/err.h"
#include "routes/batch_event.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *event = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(event)) {
        json_decref(event);
        return 0;
    }
    json_t *errors = json_array();
    FUZZ_CHECK(errors != NULL);
    struct db_job_event ev;
    int rc = rt_batch_event_parse(&ev, errors, event, "eventbridge");
    if (rc == GW_OK) {
        FUZZ_CHECK(json_array_size(errors) == 0);
        FUZZ_CHECK(ev.event_id != NULL && ev.event_id[0] != '\0');
        FUZZ_CHECK(ev.batch_job_id != NULL && ev.status != NULL);
        FUZZ_CHECK(strcmp(ev.source, "eventbridge") == 0);
        FUZZ_CHECK(ev.new_id == NULL && ev.output_uri == NULL);
    } else {
        FUZZ_CHECK(rc == GW_EINVAL && json_array_size(errors) > 0);
    }
    json_decref(errors);
    json_decref(event);
    return 0;
}
