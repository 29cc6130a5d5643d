import pytest

from topoamorph import plan
from topoamorph.paths import CampaignPaths, fmt_density


def test_schedule_arithmetic():
    protocol = {
        "timestep_fs": 1.0,
        "segments": [
            {"name": "heat", "t_start_K": 300, "t_end_K": 9000, "duration_ps": 2, "frames": 0},
            {"name": "hold", "t_start_K": 9000, "t_end_K": 9000, "duration_ps": 3, "frames": 30},
            {"name": "cool", "t_start_K": 9000, "t_end_K": 5000, "duration_ps": 2, "frames": 100},
        ],
    }
    s = plan.schedule(protocol)
    assert [g.steps for g in s.segments] == [2000, 3000, 2000]
    assert s.total_steps == 7000 and s.frames == 130
    hold = s.segments[1]
    assert hold.sample_steps[0] == 100 and hold.sample_steps[-1] == 3000 and len(set(hold.sample_steps)) == 30
    assert s.segments[2].temperature_at(1000) == pytest.approx(7000)
    table = s.frame_table()
    assert table[0] == ("hold", 2100, pytest.approx(2.1), 9000.0)
    assert table[-1][1:3] == (7000, pytest.approx(7.0)) and table[-1][3] == pytest.approx(5000)
    times = [t for _, _, t, _ in table]
    assert times == sorted(times)


def test_half_femtosecond_steps_double_the_count():
    protocol = {
        "timestep_fs": 0.5,
        "segments": [{"name": "a", "t_start_K": 300, "t_end_K": 300, "duration_ps": 1, "frames": 4}],
    }
    assert plan.schedule(protocol).segments[0].sample_steps == (500, 1000, 1500, 2000)


def test_runs_seeds_and_paths(default_config):
    runs = plan.runs(default_config)
    s = default_config["structures"]
    assert len(runs) == len(s["densities"]) * s["runs"]
    assert len({r.seed for r in runs}) == len(runs)
    assert runs[0].path == CampaignPaths("demo").structures(s["densities"][0], 1)
    # a run's seed depends on the campaign seed, its density and its index, not on the other densities
    assert plan.run_seed(1, 2.0, 1) == plan.run_seed(1, 2.0, 1) != plan.run_seed(2, 2.0, 1)
    assert fmt_density(1.5) == "1.50"
    assert plan.find_run(default_config, "1.50", "2").run == 2


@pytest.mark.parametrize("batch_size", [1, 7, 100, 255, 10**6])
def test_batches_cover_every_frame_once(default_config, batch_size):
    cfg = dict(default_config, homology=dict(default_config["homology"], batch_size=batch_size))
    nframes = plan.schedule(cfg["structures"]["protocol"]).frames
    seen = []
    batches = plan.batches(cfg)
    for b in batches:
        assert 0 < sum(c.stop - c.start for c in b) <= batch_size
        for c in b:
            seen.extend((c.path, i) for i in range(c.start, c.stop))
    expected = [(r.path, i) for r in plan.runs(cfg) for i in range(nframes)]
    assert seen == expected
    assert len(batches) == -(-len(expected) // batch_size)
    assert plan.batch_ids(cfg)[0] == "0000"
