//! Drawing: `render` lays out the screen from `&App` and hands each region to its own small
//! function. Nothing here changes state; styles come from [`theme::Theme`].

mod help;
mod hosts;
mod status_bar;
pub mod theme;

#[cfg(test)]
mod tests;

use crate::app::App;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use theme::Theme;

/// Draws the whole screen.
pub fn render(frame: &mut Frame<'_>, app: &App, theme: Theme) {
    let area = frame.area();
    let [list, problem, status] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(status_bar::problem_height(app, area.width)),
        Constraint::Length(1),
    ])
    .areas(area);
    hosts::render(frame, list, app, theme);
    status_bar::render_problem(frame, problem, app, theme);
    status_bar::render(frame, status, app, theme);
    if app.help_visible() {
        help::render(frame, area, theme);
    }
}
