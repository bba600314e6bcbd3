//! The console's start page: where to find what.

use super::PageProps;
use yew::prelude::*;

#[function_component]
pub fn Home(props: &PageProps) -> Html {
    html! {
        <p>{ format!("Signed in as {}. Choose a section in the navigation bar.", props.session.username) }</p>
    }
}
