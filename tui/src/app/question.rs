//! Answering an OpenCode question (the model's `question` tool) from the attention panel: the
//! questions with their options, one at a time; ↑↓ move, Space picks (several where the
//! question allows), Enter picks and goes on, submitting after the last; `r` rejects.

use super::App;
use super::attention::ItemKind;
use super::overlay::Overlay;
use crate::action::Action;
use crate::call::{Call, Scope, WatchKey};
use crate::effect::Effect;
use proto::ops::{PermissionAnswer, QuestionReply, QuestionRequest};
use proto::text::RemoteText;

/// One question as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// Its short header, if any.
    pub header: RemoteText,
    /// The question.
    pub text: RemoteText,
    /// The options: label and description.
    pub options: Vec<(RemoteText, RemoteText)>,
    /// Whether several options may be picked.
    pub multiple: bool,
}

/// The open question form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestionForm {
    /// The request id.
    pub id: String,
    /// Where it was asked.
    pub watch: WatchKey,
    /// The session asking.
    pub session: String,
    /// The questions.
    pub questions: Vec<Question>,
    /// The question shown.
    pub current: usize,
    /// The highlighted option of the question shown.
    pub cursor: usize,
    /// Picked option indexes, per question.
    pub picked: Vec<Vec<usize>>,
}

/// The questions of a request as OpenCode sends them (unknown shapes give an empty list).
pub fn parse(questions: &serde_json::Value) -> Vec<Question> {
    let text = |v: &serde_json::Value, k: &str| {
        RemoteText::new(
            v.get(k)
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default(),
        )
    };
    questions
        .as_array()
        .into_iter()
        .flatten()
        .map(|q| Question {
            header: text(q, "header"),
            text: text(q, "question"),
            options: q
                .get("options")
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
                .map(|o| (text(o, "label"), text(o, "description")))
                .filter(|(label, _)| !label.is_empty())
                .collect(),
            multiple: q
                .get("multiple")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false),
        })
        .collect()
}

impl QuestionForm {
    /// A form for `request` asked on `watch`; `None` when it has no question with options.
    pub fn new(watch: &WatchKey, request: &QuestionRequest) -> Option<Self> {
        let questions = parse(&request.questions);
        if questions.is_empty() || questions.iter().any(|q| q.options.is_empty()) {
            return None;
        }
        Some(Self {
            id: request.id.clone(),
            watch: watch.clone(),
            session: request.session.clone(),
            picked: vec![Vec::new(); questions.len()],
            questions,
            current: 0,
            cursor: 0,
        })
    }

    fn question(&self) -> Option<&Question> {
        self.questions.get(self.current)
    }

    fn toggle(&mut self) {
        let multiple = self.question().is_some_and(|q| q.multiple);
        let cursor = self.cursor;
        let Some(picked) = self.picked.get_mut(self.current) else {
            return;
        };
        if let Some(i) = picked.iter().position(|&p| p == cursor) {
            picked.remove(i);
        } else {
            if !multiple {
                picked.clear();
            }
            picked.push(cursor);
        }
    }

    /// The answers: the picked labels, per question.
    pub fn answers(&self) -> Vec<Vec<String>> {
        self.questions
            .iter()
            .zip(&self.picked)
            .map(|(q, picked)| {
                let mut picked = picked.clone();
                picked.sort_unstable();
                picked
                    .iter()
                    .filter_map(|&i| q.options.get(i).map(|(l, _)| l.to_string()))
                    .collect()
            })
            .collect()
    }
}

impl App {
    /// The open question form, if any.
    pub fn question_form(&self) -> Option<&QuestionForm> {
        match self.overlay.as_ref() {
            Some(Overlay::Question(q)) => Some(q),
            _ => None,
        }
    }

    /// Opens the form for the attention item at `index` if it is a question; says why not
    /// when the question cannot be answered here.
    pub(super) fn open_question(&mut self, index: usize) -> bool {
        let Some(item) = self.attention.items().get(index) else {
            return false;
        };
        let ItemKind::Question(request) = &item.kind else {
            return false;
        };
        match QuestionForm::new(&item.watch, request) {
            Some(form) => self.overlay = Some(Overlay::Question(form)),
            None => self.notify(
                "this question has no options to pick; answer it in OpenCode, or r rejects it",
                true,
            ),
        }
        true
    }

    /// Keys while the form is open.
    pub(super) fn question_action(&mut self, action: Action, fx: &mut Vec<Effect>) {
        let Some(Overlay::Question(form)) = self.overlay.as_mut() else {
            return;
        };
        let options = form.question().map_or(0, |q| q.options.len());
        match action {
            Action::SelectPrev => form.cursor = form.cursor.saturating_sub(1),
            Action::SelectNext => form.cursor = (form.cursor + 1).min(options.saturating_sub(1)),
            Action::ToggleBlock => form.toggle(),
            Action::Send => {
                if form.picked.get(form.current).is_some_and(Vec::is_empty) {
                    form.toggle();
                }
                if form.current + 1 < form.questions.len() {
                    form.current += 1;
                    form.cursor = 0;
                } else {
                    let answers = form.answers();
                    self.reply_question(Some(answers), fx);
                }
            }
            Action::Reject => self.reply_question(None, fx),
            Action::Back => self.overlay = None,
            Action::Quit => fx.push(Effect::Quit),
            _ => {}
        }
    }

    fn reply_question(&mut self, answers: Option<Vec<Vec<String>>>, fx: &mut Vec<Effect>) {
        let form = match self.overlay.take() {
            Some(Overlay::Question(form)) => form,
            other => {
                self.overlay = other;
                return;
            }
        };
        let scope = Scope::session(&form.watch.host, &form.watch.workspace, &form.session);
        let reject = answers.is_none();
        let call = Call::QuestionReply(QuestionReply {
            request_id: form.id.clone(),
            answers,
        });
        if self.act(scope, call, fx).is_some() {
            self.attention.mark_answering(
                &form.id,
                if reject {
                    PermissionAnswer::Reject
                } else {
                    PermissionAnswer::Once
                },
            );
        }
    }
}
