// slack-notification.step.js (named by the tutorial's diagram): posts the daily report to Slack.
export default async function slackNotification(event) {
  const { date, stats } = event.data
  await sendSlackNotification({
    channel: process.env.SLACK_REPORT_CHANNEL || '#dev-reports',
    message: `Daily PR report (${date.slice(0, 10)}): ${stats.prsOpened} opened, ` +
      `${stats.reviewsCompleted} reviewed, ${stats.prsMerged} merged`
  })
}
