"""The console's quantified loss page: a writer runs an analysis of the open register; anyone signed in reads the
figures, the curve against the tolerance, the drivers, the risks not quantified and the treatment values, in
English and Chinese."""

from fastapi.testclient import TestClient

from riskops.apikeys.models import Role
from tests.conftest import Keys
from tests.console.test_register_pages import SignedFactory, location
from tests.quant.helpers import quantified_risk
from tests.quant.test_analyses import RARE, STEADY, tolerance
from tests.quant.test_treatment_value import effect
from tests.treatments.helpers import add_action, new_risk


def test_the_loss_page_shows_the_register_s_analysis(client: TestClient, keys: Keys, signed: SignedFactory) -> None:
    reader = signed(Role.read)
    assert "No loss analysis has been run yet." in reader.client.get("/console/loss").text
    assert reader.post("/console/loss").status_code == 403
    quantified_risk(client, STEADY, title="Card fraud")
    rare = quantified_risk(client, RARE, title="Ransomware <b>")
    new_risk(client, title="Supplier failure")
    tolerance(client, keys, (1_000_000.0, 0.01))
    effect(client, add_action(client, rare, title="Offline backups"), frequency={"reduction_percent": 50})
    writer = signed(Role.write)
    assert location(writer.post("/console/loss")) == "/console/loss"
    page = reader.client.get("/console/loss").text
    assert "Analysis 1 of" in page and "2 risks, 10,000 trials" in page
    assert "<svg" in page and "Tolerance: at most 1% chance of losing over 1M EUR (breached)" in page
    assert "Over the loss tolerance." in page
    assert f'<a href="/console/risks/{rare["reference"]}">{rare["reference"]}</a> Ransomware &lt;b&gt;' in page
    assert "Supplier failure: no loss estimate" in page
    assert "Offline backups" in page and "The open plan" in page and "no bound" not in page
    chinese = signed(Role.read, language="zh-CN").client.get("/console/loss").text
    assert "量化损失" in chinese and "超出损失容忍度。" in chinese
