// TEMPORARY tuning harness (to be deleted).
use ragchat_rag::*;
use serde::Deserialize;
use std::path::Path;
#[derive(Deserialize)]
struct EvalSet {
    single: Vec<Item>,
    conversations: Vec<Conv>,
}
#[derive(Deserialize)]
struct Item {
    question: String,
    expected: String,
}
#[derive(Deserialize)]
struct Conv {
    name: String,
    turns: Vec<Turn>,
}
#[derive(Deserialize)]
struct Turn {
    message: String,
    expected: String,
}

fn run(
    index: &Index,
    eval: &EvalSet,
    config: RetrieverConfig,
    verbose: bool,
) -> (usize, usize, usize, usize, usize, usize, bool) {
    let r = Retriever::with_config(index.clone(), config.clone());
    let ans = ExtractiveAnswerer::with_config(ExtractiveConfig {
        retrieval: config.clone(),
        ..Default::default()
    });
    let mut bad_ans = 0;
    let mut seed_ok = true;
    let mut sf = 0;
    let mut cf = 0;
    let mut ct = 0;
    let mut fm = 0;
    let mut first = 0;
    for it in &eval.single {
        let hits = r.search(&it.question, &[], 3).unwrap();
        if hits.hits.iter().any(|h| h.path == it.expected) {
            sf += 1
        } else if verbose {
            println!(
                "  MISS single {:?} exp {} got {:?} q {}",
                it.question,
                it.expected,
                hits.hits.iter().map(|h| &h.path).collect::<Vec<_>>(),
                hits.query
            )
        }
        if hits.hits.first().map(|h| &h.path) == Some(&it.expected) {
            first += 1
        } else if verbose {
            println!(
                "  TOP1 single {:?} exp {} got {:?} q {}",
                it.question,
                it.expected,
                hits.hits
                    .iter()
                    .map(|h| (&h.path, h.score))
                    .collect::<Vec<_>>(),
                hits.query
            )
        }
    }
    for c in &eval.conversations {
        let mut history = Vec::new();
        for (i, t) in c.turns.iter().enumerate() {
            let hits = r.search(&t.message, &history, 3).unwrap();
            ct += 1;
            let ok = hits.hits.iter().any(|h| h.path == t.expected);
            if ok {
                cf += 1
            } else {
                if i > 0 {
                    fm += 1
                }
                if verbose {
                    println!(
                        "  MISS {} #{} {:?} exp {} got {:?} q {}",
                        c.name,
                        i + 1,
                        t.message,
                        t.expected,
                        hits.hits.iter().map(|h| &h.path).collect::<Vec<_>>(),
                        hits.query
                    )
                }
            }
            if hits.hits.first().map(|h| &h.path) == Some(&t.expected) {
                first += 1
            } else if verbose && ok {
                println!(
                    "  TOP1 {} #{} {:?} exp {} got {:?} q {}",
                    c.name,
                    i + 1,
                    t.message,
                    t.expected,
                    hits.hits
                        .iter()
                        .map(|h| (&h.path, h.score))
                        .collect::<Vec<_>>(),
                    hits.query
                )
            }
            let a = ans.compose(&AnswerRequest {
                question: t.message.clone(),
                history: history.clone(),
                hits: hits.hits.clone(),
            });
            if a.sources.first().map(|s| &s.path) != Some(&t.expected) {
                bad_ans += 1;
                if c.name == "seed" {
                    seed_ok = false
                }
            }
            if verbose && a.sources.first().map(|s| &s.path) != Some(&t.expected) {
                println!(
                    "  ANS[1] {} #{} {:?} -> {:?}",
                    c.name,
                    i + 1,
                    t.message,
                    a.sources.first().map(|s| &s.path)
                )
            }
            if verbose && std::env::var("SHOW").is_ok() {
                println!(
                    "[{} #{}] {}\n  q={} kind={:?}\n  A: {}\n  S: {:?}",
                    c.name,
                    i + 1,
                    t.message,
                    hits.query,
                    hits.kind,
                    a.text,
                    a.sources
                        .iter()
                        .map(|s| format!("{}:{}-{}", s.path, s.line_start, s.line_end))
                        .collect::<Vec<_>>()
                );
            }
            history.push(HistoryTurn::user(&t.message));
            history.push(HistoryTurn::assistant(a.text));
        }
    }
    (sf, cf, ct, fm, first, bad_ans, seed_ok)
}

#[test]
fn tune() {
    let eval: EvalSet = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("eval/eval.json"))
            .unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (index, _) = Index::open_or_build(
        dir.path(),
        &CorpusSource::Bundled,
        &IngestOptions::default(),
        &|_| {},
    )
    .unwrap();
    let base = RetrieverConfig::default();
    let total = eval.single.len();
    let grid: Vec<(String, RetrieverConfig)> = {
        let mut g = vec![("default".to_string(), base.clone())];
        if let Ok(spec) = std::env::var("CONFIG") {
            let v: Vec<f32> = spec.split(' ').map(|x| x.parse().unwrap()).collect();
            g = vec![(
                "default".to_string(),
                RetrieverConfig {
                    title_boost: v[0],
                    heading_boost: v[1],
                    borrowed_weight: v[2],
                    standalone_borrow_factor: v[3],
                    phrase_boost: v[4],
                    borrowed_terms_per_turn: v[5] as usize,
                    generic_term_fraction: v[6],
                    ..base.clone()
                },
            )];
        }
        if std::env::var("GRID").is_ok() {
            for tb in [1.5f32, 2.0, 3.0] {
                for hb in [0.5f32, 1.0] {
                    for bw in [0.2f32, 0.4, 0.6] {
                        for sb in [0.0f32, 0.3] {
                            for pt in [2usize, 3, 4] {
                                for gf in [0.1f32, 0.2, 0.3] {
                                    for rp in [0.7f32, 0.85, 1.0] {
                                        for dp in [0.7f32, 0.85, 1.0] {
                                            g.push((
                                                format!(
                                                    "{tb} {hb} {bw} {sb} 0.5 {pt} {gf} {rp} {dp}"
                                                ),
                                                RetrieverConfig {
                                                    title_boost: tb,
                                                    heading_boost: hb,
                                                    borrowed_weight: bw,
                                                    standalone_borrow_factor: sb,
                                                    borrowed_terms_per_turn: pt,
                                                    generic_term_fraction: gf,
                                                    ..base.clone()
                                                },
                                            ));
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        g
    };
    let mut results = Vec::new();
    for (name, c) in grid {
        let verbose = name == "default";
        let (sf, cf, ct, fm, first, bad, seed) = run(&index, &eval, c, verbose);
        results.push((
            seed,
            sf + cf,
            std::cmp::Reverse(fm),
            std::cmp::Reverse(bad),
            first,
            name.clone(),
        ));
        if verbose {
            println!("{name}: single {sf}/{total} conv {cf}/{ct} follow-up misses {fm} top1 {first} bad answers {bad} seed {seed}");
        }
    }
    results.sort_by(|a, b| b.cmp(a));
    for r in results.iter() {
        println!("{:?}", r);
    }
}

#[test]
fn debug_query() {
    let Ok(q) = std::env::var("QUERY") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (index, _) = Index::open_or_build(
        dir.path(),
        &CorpusSource::Bundled,
        &IngestOptions::default(),
        &|_| {},
    )
    .unwrap();
    let history: Vec<HistoryTurn> = std::env::var("HISTORY")
        .map(|h| {
            h.split('|')
                .enumerate()
                .map(|(i, t)| {
                    if i % 2 == 0 {
                        HistoryTurn::user(t)
                    } else {
                        HistoryTurn::assistant(t)
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let r = index.retriever().search(&q, &history, 8).unwrap();
    println!("query {} kind {:?}", r.query, r.kind);
    for h in &r.hits {
        println!(
            "{:8.3} {} | {} | {}-{}",
            h.score, h.path, h.heading, h.line_start, h.line_end
        );
    }
    let a = ExtractiveAnswerer::new().compose(&AnswerRequest {
        question: q.clone(),
        history,
        hits: r.hits[..3.min(r.hits.len())].to_vec(),
    });
    println!(
        "{}\n{:?}",
        a.text,
        a.sources.iter().map(|s| &s.path).collect::<Vec<_>>()
    );
}
